"""Exact dedup: the real prompt pools, normalisation, and independence from the bucket count."""

import json

import pandas as pd
import pytest

from core.runner import run_stage
from pipeline.dedup.exact import ExactDedupConfig, text_key
from pipeline.flows.dedup import run_exact_dedup
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools


@pytest.fixture(scope="module")
def real_pool(client, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "pool"
    files = expand_inputs([str(p) for p in sorted((shared_data / "prompts").glob("*.jsonl"))])
    run_stage(IngestPools(files, out), client, progress=False)
    return out


def test_real_pools_lose_the_vicuna_copies(client, real_pool, tmp_path):
    manifest = run_exact_dedup(client, real_pool, tmp_path / "dedup")
    assert (manifest["rows_in"], manifest["rows_out"]) == (2234, 2154)
    assert manifest["summary"]["dropped"] == 80
    dropped = pd.read_parquet(tmp_path / "dedup" / "_dropped")
    assert len(dropped) == 80
    # The kept row is the first by (source_file, source_line): AlpacaEval's copy.
    assert dropped.source_file.str.endswith("vicuna_bench.jsonl").all()
    assert dropped.duplicate_of_file.str.endswith("alpaca_eval.jsonl").all()
    kept = pd.read_parquet(tmp_path / "dedup")
    assert set(dropped.duplicate_of) <= set(kept.prompt_id)
    assert not (tmp_path / "dedup" / "_shuffle").exists()  # work files go once done


def test_rerun_of_finished_dedup_does_nothing(client, real_pool, tmp_path):
    first = run_exact_dedup(client, real_pool, tmp_path / "dedup")
    again = run_exact_dedup(client, real_pool, tmp_path / "dedup")
    assert again["content_hash"] == first["content_hash"]
    assert again["resumed_parts"] == again["parts"]


def test_same_rows_whatever_the_bucket_count(client, real_pool, tmp_path):
    one = run_exact_dedup(client, real_pool, tmp_path / "one", ExactDedupConfig(buckets=1))
    seven = run_exact_dedup(client, real_pool, tmp_path / "seven", ExactDedupConfig(buckets=7))
    assert one["rows_out"] == seven["rows_out"] == 2154
    keys = ["source_file", "source_line"]
    a = pd.read_parquet(tmp_path / "one").sort_values(keys).reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "seven").sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_normalisation_case_space_and_unicode(client, tmp_path):
    pool = tmp_path / "p.jsonl"
    rows = [
        {"prompt": "Hello   World"},
        {"prompt": "hello world"},
        {"prompt": "ＨＥＬＬＯ world "},  # full-width letters: equal after NFKC
        {"prompt": "Hello, World"},
        {"turns": ["hello world", "and more"]},
        {
            "messages": [
                {"role": "system", "content": "hello world"},
                {"role": "user", "content": "x"},
            ]
        },
    ]
    pool.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    run_stage(IngestPools(expand_inputs([str(pool)]), tmp_path / "pool"), client, progress=False)
    manifest = run_exact_dedup(client, tmp_path / "pool", tmp_path / "dedup")
    assert manifest["rows_out"] == 4
    kept = pd.read_parquet(tmp_path / "dedup")
    assert sorted(kept.source_line) == [1, 4, 5, 6]
    dropped = pd.read_parquet(tmp_path / "dedup" / "_dropped")
    assert sorted(dropped.source_line) == [2, 3] and set(dropped.duplicate_of_line) == {1}


def test_text_key_keeps_roles_apart():
    user = [{"role": "user", "content": "x"}]
    system = [{"role": "system", "content": "x"}]
    assert text_key(user) != text_key(system)
    assert text_key(user) == text_key([{"role": "user", "content": " X "}])
