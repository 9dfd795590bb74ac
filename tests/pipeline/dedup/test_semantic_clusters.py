"""Semantic dedup's clusters pass (centroids, shuffle, compare per bucket, all on the
workers) against the exact global pass, on real prompts embedded by the real MiniLM, with
planted rewordings, on the session's LocalCluster."""

import json

import pandas as pd
import pytest

from core.errors import UserError
from core.runner import run_stage
from pipeline.dedup.semantic import SemanticDedup, SemanticDedupConfig
from pipeline.evalset.embed import EmbedConversations
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools

THRESHOLD = 0.9
# Small clusters, blocks and buckets, so the ~500 rows cross every boundary the pass has.
SMALL = dict(search="clusters", rows_per_cluster=60, block_rows=16, rows_per_bucket=400)


@pytest.fixture(scope="module")
def embedded(client, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("semantic_clusters")
    texts = [
        json.loads(line).get("instruction") or json.loads(line)["prompt"]
        for name in ("alpaca_eval",)
        for line in (shared_data / "prompts" / f"{name}.jsonl").read_text().splitlines()[:400]
    ]
    planted = [t.rstrip(".?!") + " Thanks!" for t in texts[::5]]
    rows = [{"prompt": t} for t in texts + planted]
    (root / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_stage(IngestPools(expand_inputs([str(root / "pool.jsonl")]), root / "pool"), client)
    run_stage(EmbedConversations(root / "pool", root / "embedded"), client)
    return root


def _dropped(client, root, name, **config) -> pd.DataFrame:
    stage = SemanticDedup(
        root / "embedded", root / name, SemanticDedupConfig(threshold=THRESHOLD, **config)
    )
    manifest = run_stage(stage, client)
    dropped = pd.read_parquet(root / name / "_dropped")
    kept = pd.read_parquet(root / name, columns=["prompt_id"])
    assert manifest["rows_out"] == len(kept) and manifest["summary"]["dropped"] == len(dropped)
    assert len(kept) + len(dropped) == manifest["rows_in"]  # nothing lost, nothing twice
    assert not any((root / name / work).exists() for work in ("_shuffle", "_centroids", "_pairs"))
    return dropped


@pytest.fixture(scope="module")
def exact(client, embedded):
    return _dropped(client, embedded, "exact", search="exact")


def test_clusters_pass_agrees_with_the_exact_pass(client, embedded, exact):
    assert len(exact) > 50  # most of the 80 planted rewordings, and a few real near-duplicates
    for assign in (1, SemanticDedupConfig.assign):
        found = _dropped(client, embedded, f"clusters{assign}", assign=assign, **SMALL)
        agree = len(set(found.prompt_id) & set(exact.prompt_id))
        recall, precision = agree / len(exact), agree / len(found)
        # A pair split across two clusters is SemDeDup's known miss (assign 1); boundary rows
        # joining their next clusters find most (here 8 clusters of 60 rows: boundaries
        # everywhere; bench.semantic_scale measures 2,000-row clusters). A drop the exact
        # pass does not make is wrong.
        assert precision >= 0.99 and recall >= (0.9 if assign == 1 else 0.97), (assign, recall)
        assert (found.similarity >= THRESHOLD).all() and found.source_line.notna().all()
        same = found.merge(exact, on="prompt_id", suffixes=("", "_exact"))
        # the first occurrence wins in both: the kept row a drop points at is an earlier one
        assert (same.duplicate_of == same.duplicate_of_exact).mean() > 0.95


def test_clusters_pass_resumes_from_its_work_stages(client, embedded):
    config = SemanticDedupConfig(threshold=THRESHOLD, **SMALL)
    first = _dropped(client, embedded, "resume", **SMALL)
    stage = SemanticDedup(embedded / "embedded", embedded / "resume", config)
    again = run_stage(stage, client)
    assert again["resumed_parts"] == again["parts"]
    pd.testing.assert_frame_equal(first, pd.read_parquet(embedded / "resume" / "_dropped"))


def test_more_clusters_than_rows_is_one_line():
    with pytest.raises(UserError, match="more than the 10 rows"):
        SemanticDedupConfig(clusters=11).resolved_clusters(10)
    for bad in (dict(threshold=0), dict(threshold=1.5), dict(assign=9), dict(assign_margin=-1), dict(block_rows=0)):
        with pytest.raises(UserError):
            SemanticDedupConfig(**bad)
