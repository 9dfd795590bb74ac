"""Ingest on real pools and other formats; the `arena ingest` command itself is tested in
tests/jobs/test_ingest_cli.py."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.runner import run_stage
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestConfig, IngestPools


def ingest(client, paths, out, **config):
    stage = IngestPools(expand_inputs([str(p) for p in paths]), out, IngestConfig(**config))
    return run_stage(stage, client, progress=False)


def test_real_prompt_pools(client, shared_data, tmp_path):
    files = sorted((shared_data / "prompts").glob("*.jsonl"))
    manifest = ingest(client, files, tmp_path / "pool")
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_rejected"]) == (2234, 2234, 0)
    rows = pd.read_parquet(tmp_path / "pool")
    assert len(rows) == 2234
    assert rows.groupby("source").size().to_dict() == {
        "alpaca_eval": 805,
        "arena_hard_v0.1": 500,
        "arena_hard_v2.0": 750,
        "llmfao_prompts": 19,
        "mt_bench": 80,
        "vicuna_bench": 80,
    }
    mt = rows[rows.source == "mt_bench"]
    assert all(len(m) == 2 for m in mt.messages)  # multi-turn stays multi-turn
    assert json.loads(mt.iloc[0].metadata)["category"] == "writing"
    assert not (tmp_path / "pool" / "_quarantine").exists()


def test_json_array_and_parquet_inputs(client, tmp_path):
    array = tmp_path / "pool.json"
    array.write_text(json.dumps([{"instruction": "a"}, {"instruction": ""}, {"text": "c"}]))
    table = pa.table({"prompt": ["p1", "p2", None], "uid": ["x", "y", "z"]})
    pq.write_table(table, tmp_path / "pool.parquet", row_group_size=2)
    manifest = ingest(client, [array, tmp_path / "pool.parquet"], tmp_path / "out")
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_rejected"]) == (6, 4, 2)
    rows = pd.read_parquet(tmp_path / "out").sort_values(["source_file", "source_line"])
    assert list(rows.source_line) == [1, 3, 1, 2]
    assert list(rows.source_id)[2:] == ["x", "y"]
    quarantine = pd.read_parquet(tmp_path / "out" / "_quarantine")
    assert sorted(quarantine.reason) == [
        "empty text in instruction",
        "wrong type: prompt is NoneType, expected string",
    ]
