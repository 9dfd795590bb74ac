"""Slices D1..DN of a real prompt pool on a real LocalCluster: disjoint, covering, stable."""

import pandas as pd
import pytest

from core.errors import UserError
from core.runner import run_stage
from pipeline.flywheel.slices import SliceConfig, TakeSlice, slice_of
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools


def test_slices_partition_the_pool_and_resume(client, shared_data, tmp_path):
    files = expand_inputs([str(shared_data / "prompts")])
    run_stage(IngestPools(files, tmp_path / "pool"), client, progress=False)
    pool = pd.read_parquet(tmp_path / "pool", columns=["prompt_id"])
    taken = [
        run_stage(
            TakeSlice(tmp_path / "pool", tmp_path / f"D{k}", SliceConfig(slices=3, index=k)),
            client,
            progress=False,
        )
        for k in (1, 2, 3)
    ]
    ids = [set(pd.read_parquet(tmp_path / f"D{k}").prompt_id) for k in (1, 2, 3)]
    assert sum(m["rows_out"] for m in taken) == len(pool)
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2]) and ids[0].isdisjoint(ids[2])
    assert min(map(len, ids)) > len(pool) / 3 * 0.8  # a hash spreads rows evenly
    again = run_stage(
        TakeSlice(tmp_path / "pool", tmp_path / "D2", SliceConfig(slices=3, index=2)),
        client,
        progress=False,
    )
    assert (
        again["resumed_parts"] == again["parts"]
        and again["content_hash"] == taken[1]["content_hash"]
    )


def test_a_rows_slice_depends_on_its_id_and_seed_only():
    assert slice_of("abc", 9) == slice_of("abc", 9)
    assert {slice_of(f"p{i}", 9) for i in range(500)} == set(range(1, 10))
    assert [slice_of(f"p{i}", 9, seed=1) for i in range(50)] != [
        slice_of(f"p{i}", 9) for i in range(50)
    ]
    with pytest.raises(UserError, match="slice 4 of 3"):
        SliceConfig(slices=3, index=4)
