"""Decontamination removes benchmark copies and paraphrase-like edits, and says why."""

import json

import pandas as pd
import pytest

from core.runner import run_stage
from pipeline.evalset.decontaminate import DecontaminationConfig
from pipeline.flows.decontaminate import decontaminate
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools


def paraphrase(text: str) -> str:
    """An edit a contaminated pool really holds: a polite prefix, changed case, a trailing note."""
    return f"Please answer this: {text.lower()} Thanks in advance!"


@pytest.mark.slow
def test_copies_and_paraphrases_are_removed(client, shared_data, tmp_path):
    bench_rows = [
        json.loads(line) for line in (shared_data / "prompts" / "vicuna_bench.jsonl").open()
    ][:15]
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in bench_rows))
    train = tmp_path / "train.jsonl"
    with train.open("w") as f:
        for line in (shared_data / "prompts" / "arena_hard_v0.1.jsonl").open():
            f.write(line)
        for r in bench_rows:
            f.write(json.dumps({"prompt": r["turns"][0], "tag": "copy"}) + "\n")
            f.write(json.dumps({"prompt": paraphrase(r["turns"][0]), "tag": "paraphrase"}) + "\n")
    run_stage(IngestPools(expand_inputs([str(train)]), tmp_path / "pool"), client, progress=False)

    manifest = decontaminate(
        client, tmp_path / "pool", [str(bench)], tmp_path / "out", DecontaminationConfig(top_k=2)
    )
    kept = pd.read_parquet(tmp_path / "out")
    tags = kept.metadata.map(lambda m: json.loads(m).get("tag"))
    assert not tags.isin(["copy", "paraphrase"]).any()
    assert manifest["rows_rejected"] == 30 and len(kept) == 500
    removed = pd.read_parquet(tmp_path / "out" / "_removed")
    assert len(removed) == 30 and removed.similarity.min() > 0.8
    assert removed.reason.str.contains("top-2 neighbour").all()
    assert set(removed.benchmark_text) == {r["turns"][0] for r in bench_rows}
