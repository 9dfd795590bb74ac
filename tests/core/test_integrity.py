"""Finished work is verified on rerun: a part or side file that is missing, truncated or
changed (same size), or a lost marker, makes exactly its task run again, and the folder
ends identical to an uninterrupted run's. Real stages (ingest, exact dedup) on a LocalCluster."""

import json
import time

import pyarrow.parquet as pq
import pytest

from core.hashing import file_digest
from core.parquet_io import read_folder
from core.runner import is_complete, run_stage
from pipeline.dedup.exact import ExactDedupConfig
from pipeline.flows.dedup import run_exact_dedup
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools

PARTS = ["part-0000-00000", "part-0001-00000", "part-0002-00000"]
DEDUP = ExactDedupConfig(buckets=3)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three pool files: a bad line in two of them (quarantine), a prompt shared by two."""
    folder = tmp_path_factory.mktemp("pool")
    for i in range(3):
        rows = [json.dumps({"prompt": f"question {i}-{n} about things"}) for n in range(40)]
        rows.append(json.dumps({"prompt": "the same question everywhere"}))
        if i != 1:
            rows.append("{not json")
        (folder / f"pool{i}.jsonl").write_text("\n".join(rows) + "\n")
    return expand_inputs([str(p) for p in sorted(folder.glob("*.jsonl"))])


def ingest(client, files, out):
    return run_stage(IngestPools(files, out), client, progress=False)


@pytest.fixture(scope="module")
def reference(client, files, tmp_path_factory):
    """The uninterrupted run: its manifest and rows."""
    out = tmp_path_factory.mktemp("reference")
    first = ingest(client, files, out / "ingest")
    return first, read_folder(out / "ingest")


def marker_times(folder):
    return {p.stem: p.stat().st_mtime_ns for p in (folder / "_done").glob("*.json")}


def redone(before, folder):
    after = marker_times(folder)
    return {name for name in after if after[name] != before.get(name)}


def same_as(manifest, reference):
    """Same rows, same hashes, and byte-identical files (sizes and BLAKE2b) per part."""
    first, rows = reference
    assert manifest["content_hash"] == first["content_hash"]
    assert manifest["rows_out"] == first["rows_out"] == rows.num_rows
    assert [r["files"] for r in manifest["part_results"]] == [
        r["files"] for r in first["part_results"]
    ]


def flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


DAMAGE = {
    "delete part": lambda out: (out / "part-0001-00000.parquet").unlink(),
    "truncate part": lambda out: truncate(out / "part-0001-00000.parquet"),
    "flip bytes in part": lambda out: flip_bytes(out / "part-0001-00000.parquet"),
    "delete side file": lambda out: (out / "_quarantine" / "part-0002-00000.parquet").unlink(),
    "delete marker": lambda out: (out / "_done" / "part-0001-00000.json").unlink(),
}
AFFECTED = {
    "delete part": "part-0001-00000",
    "truncate part": "part-0001-00000",
    "flip bytes in part": "part-0001-00000",
    "delete side file": "part-0002-00000",
    "delete marker": "part-0001-00000",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_ingest_redoes_exactly_that_part(
    client, files, reference, tmp_path, damage, caplog
):
    out = tmp_path / "ingest"
    ingest(client, files, out)
    before = marker_times(out)
    time.sleep(0.01)  # a rewritten marker gets another mtime
    DAMAGE[damage](out)
    stage = IngestPools(files, out)
    assert not is_complete(stage)  # a damaged folder is never reported as done

    again = ingest(client, files, out)
    assert redone(before, out) == {AFFECTED[damage]}
    assert again["resumed_parts"] == len(PARTS) - 1
    if damage != "delete marker":
        assert f"ingest: redoing {AFFECTED[damage]}" in caplog.text
    same_as(again, reference)
    assert is_complete(stage)


def test_marker_without_file_list_is_redone(client, files, reference, tmp_path):
    """Older code wrote no file list: such a marker cannot be verified, so its task runs again."""
    out = tmp_path / "ingest"
    ingest(client, files, out)
    marker = out / "_done" / "part-0000-00000.json"
    old = json.loads(marker.read_text())
    del old["files"]
    marker.write_text(json.dumps(old))
    before = marker_times(out)
    time.sleep(0.01)
    again = ingest(client, files, out)
    assert redone(before, out) == {"part-0000-00000"}
    same_as(again, reference)


@pytest.mark.parametrize("victim", ["part-00001.parquet", "_dropped/part-00001.parquet"])
def test_damaged_dedup_redoes_that_bucket(client, files, tmp_path, victim):
    pool = tmp_path / "ingest"
    ingest(client, files, pool)
    first = run_exact_dedup(client, pool, tmp_path / "dedup", DEDUP)
    assert first["summary"]["dropped"] == 2
    before = marker_times(tmp_path / "dedup")
    time.sleep(0.01)
    (tmp_path / "dedup" / victim).unlink()

    # The shuffle files went when the first run finished, so the map runs again; the
    # reduce redoes only the damaged bucket.
    again = run_exact_dedup(client, pool, tmp_path / "dedup", DEDUP)
    assert redone(before, tmp_path / "dedup") == {"part-00001"}
    assert again["resumed_parts"] == again["parts"] - 1 == 2
    assert again["content_hash"] == first["content_hash"]
    # The same results, files and hashes; only the redone task's own time differs.
    untimed = lambda results: [{**r, "seconds": None} for r in results]  # noqa: E731
    assert untimed(again["part_results"]) == untimed(first["part_results"])
    assert pq.read_table(tmp_path / "dedup" / "_dropped").num_rows == 2


def test_marker_records_every_file_the_task_wrote(client, files, tmp_path):
    out = tmp_path / "ingest"
    manifest = ingest(client, files, out)
    by_part = {r["name"]: r["files"] for r in manifest["part_results"]}
    # Part 1 had no bad line, so it wrote no quarantine file.
    assert [f["path"] for f in by_part["part-0001-00000"]] == ["part-0001-00000.parquet"]
    recorded = by_part["part-0002-00000"]
    assert [f["path"] for f in recorded] == [
        "part-0002-00000.parquet",
        "_quarantine/part-0002-00000.parquet",
    ]
    for f in recorded:
        assert (out / f["path"]).stat().st_size == f["bytes"]
        assert file_digest(out / f["path"]) == f["blake2b"]


def test_flywheel_step_with_a_damaged_folder_is_not_done(client, files, tmp_path, caplog):
    """The flywheel state trusts a recorded step only while its stage folder verifies."""
    from pipeline.flywheel.state import FlywheelState
    from pipeline.flywheel.steps import StepResult

    out = tmp_path / "ingest"
    ingest(client, files, out)
    state = FlywheelState.open(tmp_path, {"test": 1})
    state.record(1, "pool", StepResult("pool", folder=str(out)))
    assert state.done(1, "pool")
    truncate(out / "part-0000-00000.parquet")
    assert state.done(1, "pool") is None
    assert "redoing pool" in caplog.text


def test_a_damaged_input_is_refused_before_any_task(client, files, tmp_path):
    """A later stage reading a folder with a missing part would read fewer rows: it stops
    with one line naming the part, and rerunning the stage that wrote it repairs it."""
    from core.errors import UserError

    ingest(client, files, tmp_path / "ingest")
    (tmp_path / "ingest" / "part-0002-00000.parquet").unlink()
    with pytest.raises(UserError, match=r"input .*ingest is damaged \(part-0002-00000: "):
        run_exact_dedup(client, tmp_path / "ingest", tmp_path / "dedup", DEDUP)
    assert not any((tmp_path / "dedup").rglob("*.parquet"))  # no task ran
    ingest(client, files, tmp_path / "ingest")
    assert run_exact_dedup(client, tmp_path / "ingest", tmp_path / "dedup", DEDUP)
