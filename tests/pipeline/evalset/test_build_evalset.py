"""WizardArena eval sets on real prompt pools, with the real MiniLM and SmolLM2 models.

Sized to the assertions: 179 real prompts (MT-bench's two-turn dialogues, Vicuna-bench,
LLMFAO) in 6 clusters, 6 Hard candidates. The full size, every prompt of ../shared/data in
50 clusters, is `python -m bench.evalset_real`."""

import json

import numpy as np
import pandas as pd
import pytest

from core.runner import run_stage
from pipeline.evalset.embed import EmbedConfig, embed_texts
from pipeline.evalset.select import draw_per_cluster
from pipeline.flows.dedup import run_exact_dedup
from pipeline.flows.evalset import Recipe, build_from_deduped
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools

POOLS = ("mt_bench.jsonl", "vicuna_bench.jsonl", "llmfao_prompts.jsonl")
CLUSTERS, HARD_TOP = 6, 3
RECIPE = Recipe(
    clusters=CLUSTERS, diverse_per_cluster=2, hard_candidates_per_cluster=1, hard_top=HARD_TOP,
    seed=7,
)  # fmt: skip


@pytest.fixture(scope="module")
def deduped(client, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("evalset")
    files = expand_inputs([str(shared_data / "prompts" / name) for name in POOLS])
    run_stage(IngestPools(files, root / "pool"), client, progress=False)
    run_exact_dedup(client, root / "pool", root / "dedup")
    return root / "dedup"


@pytest.fixture(scope="module")
def built(client, deduped, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    return out, build_from_deduped(client, deduped, out, RECIPE)


@pytest.mark.slow
def test_diverse_hard_mix_on_real_prompts(built):
    out, counts = built
    diverse = pd.read_parquet(out / "diverse")
    assert len(diverse) == 2 * CLUSTERS and diverse.cluster.nunique() == CLUSTERS
    assert (diverse.groupby("cluster").size() == 2).all()
    hard = pd.read_parquet(out / "hard")
    scored = pd.read_parquet(out / "scored")
    assert len(scored) == CLUSTERS and counts["candidates"] == CLUSTERS
    assert len(hard) == HARD_TOP and hard.difficulty.between(0, 10).all()
    # Hard is the top of the scored candidates, by the judge's score.
    assert hard.difficulty.min() >= scored.difficulty.dropna().sort_values().iloc[-HARD_TOP]
    mix = pd.read_parquet(out / "mix")
    assert set(mix.prompt_id) == set(diverse.prompt_id) | set(hard.prompt_id)
    assert (mix.messages.map(len) > 1).any()  # multi-turn dialogues stay in
    report = (out / "report.md").read_text()
    assert report.count(f"diverse: {2 * CLUSTERS} rows from {CLUSTERS} clusters") == 1
    for picture in ("cluster_sizes.png", "embedding_map.png"):
        assert (out / picture).stat().st_size > 10_000


@pytest.mark.slow
def test_same_seed_same_set_and_resume(client, deduped, built):
    out, _ = built
    first = set(pd.read_parquet(out / "diverse").prompt_id)
    again = build_from_deduped(client, deduped, out, RECIPE)  # every stage resumes from its markers
    assert (
        again["diverse"] == 2 * CLUSTERS
        and set(pd.read_parquet(out / "diverse").prompt_id) == first
    )
    for stage in ("draws", "drawn", "scored"):  # no draw redone, no candidate judged twice
        manifest = json.loads((out / stage / "_manifest.json").read_text())
        assert manifest["resumed_parts"] == manifest["parts"]
    index = pd.read_parquet(out / "clustered", columns=["prompt_id", "cluster"])  # in pool order
    same = draw_per_cluster(index, 2, RECIPE.seed, "diverse")
    other = draw_per_cluster(index, 2, RECIPE.seed + 1, "diverse")
    assert set(same.prompt_id) == first
    assert set(other.prompt_id) != first and other.cluster.nunique() == CLUSTERS


@pytest.mark.slow
def test_embeddings_are_unit_length_and_match_float32(built):
    out, _ = built
    table = pd.read_parquet(out / "embedded", columns=["messages", "embedding"]).head(64)
    vectors = np.stack(table.embedding.to_numpy())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    from core.schemas import prompt_text

    texts = [prompt_text(list(m)) for m in table.messages]
    full = embed_texts(texts, EmbedConfig(dtype="float32"))
    assert (np.sum(vectors * full, axis=1) >= 0.99).all()
