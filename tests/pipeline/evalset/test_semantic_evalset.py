"""build-evalset with `semantic_threshold`: planted paraphrases of real prompts are dropped
after embedding and before K-means, on a real LocalCluster with the real MiniLM and SmolLM2."""

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import UserError
from core.runner import run_stage
from pipeline.dedup.semantic import DEFAULT_THRESHOLD
from pipeline.flows.dedup import run_near_dedup
from pipeline.flows.evalset import Recipe, build_from_deduped
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools

BASE = range(24)  # the first AlpacaEval rows (0-based)
# Rewordings of AlpacaEval rows that exact and near dedup keep, but MiniLM sees as the same.
PARAPHRASES = {
    1: "How did the US states get their names?",
    4: "How can I wrap a present neatly?",
    8: "What different drawers should I have for clothes?",
}
RECIPE = Recipe(
    clusters=4,
    diverse_per_cluster=2,
    hard_candidates_per_cluster=1,
    hard_top=2,
    seed=3,
    semantic_threshold=DEFAULT_THRESHOLD,
)


def _text(messages) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


@pytest.fixture(scope="module")
def built(client, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("semantic")
    lines = (shared_data / "prompts" / "alpaca_eval.jsonl").read_text().splitlines()
    rows = [json.loads(lines[i]) for i in BASE]
    rows += [{"instruction": text} for text in PARAPHRASES.values()]
    (root / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_stage(IngestPools(expand_inputs([str(root / "pool.jsonl")]), root / "pool"), client)
    # The near-dedup output is the conversation folder the eval set is built from.
    run_near_dedup(client, root / "pool", root / "near")
    originals = {i: json.loads(lines[i])["instruction"] for i in PARAPHRASES}
    return root, build_from_deduped(client, root / "near", root / "evalset", RECIPE), originals


def test_paraphrases_dropped_before_clustering(built):
    root, counts, originals = built
    out = root / "evalset"
    near = pd.read_parquet(root / "near")
    assert len(near) == len(BASE) + len(PARAPHRASES)  # near dedup keeps rewordings
    embedded = pd.read_parquet(out / "embedded")
    clustered = pd.read_parquet(out / "clustered")
    texts = set(clustered.messages.map(_text))
    assert texts.isdisjoint(PARAPHRASES.values()) and set(originals.values()) <= texts
    assert len(clustered) == len(embedded) - len(PARAPHRASES)
    assert counts["semantic_dropped"] == len(PARAPHRASES)
    assert counts["semantic_threshold"] == DEFAULT_THRESHOLD

    pairs = pd.read_parquet(out / "semantic_dedup" / "_dropped")
    text_of = embedded.set_index("prompt_id").messages.map(_text)
    found = {text_of[p]: text_of[d] for p, d in zip(pairs.prompt_id, pairs.duplicate_of)}
    assert found == {PARAPHRASES[i]: originals[i] for i in PARAPHRASES}
    assert (pairs.similarity >= DEFAULT_THRESHOLD).all()

    # The kept rows carry the vectors embedded once; nothing was embedded again.
    kept = pd.read_parquet(out / "semantic_dedup").set_index("prompt_id")
    first = embedded.set_index("prompt_id").loc[kept.index]
    assert np.array_equal(np.stack(kept.embedding), np.stack(first.embedding))
    manifest = json.loads((out / "semantic_dedup" / "_manifest.json").read_text())
    assert manifest["summary"]["dropped"] == len(PARAPHRASES)
    report = (out / "report.md").read_text()
    assert f"semantic dedup: {len(PARAPHRASES)} of {len(embedded)} rows dropped" in report
    mix = pd.read_parquet(out / "mix")
    assert set(mix.prompt_id) <= set(clustered.prompt_id)


def test_rebuild_resumes_semantic_dedup(client, built):
    root, counts, _ = built
    dropped = next((root / "evalset" / "semantic_dedup" / "_dropped").glob("*.parquet"))
    written = dropped.stat().st_mtime_ns
    again = build_from_deduped(client, root / "near", root / "evalset", RECIPE)
    assert again["semantic_dropped"] == counts["semantic_dropped"]
    assert dropped.stat().st_mtime_ns == written  # the pairs were not searched again
    manifest = json.loads((root / "evalset" / "semantic_dedup" / "_manifest.json").read_text())
    assert manifest["resumed_parts"] == manifest["parts"]
    report = (root / "evalset" / "report.md").read_text()
    assert report.count("semantic dedup:") == 1


def test_recipe_key_from_yaml():
    """`semantic_threshold` from a recipe's YAML or keys (the flag: tests/jobs/test_cli.py)."""
    assert Recipe().semantic_threshold is None  # off unless a recipe sets it
    assert Recipe.load("wizardarena_mix", {}).semantic_threshold == DEFAULT_THRESHOLD
    assert Recipe.load("demo", {}).semantic_threshold is None
    assert Recipe.load(None, {"semantic_threshold": 0.9}).semantic_threshold == 0.9
    for bad in (0, 1.5, "high"):
        with pytest.raises(UserError, match="semantic_threshold"):
            Recipe(semantic_threshold=bad)
