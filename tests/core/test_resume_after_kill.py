"""A job killed with SIGKILL mid-run resumes to exactly the rows of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.pools import write_pool

ARENA = [sys.executable, "-m", "jobs.cli"]
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> None:
    subprocess.run([*ARENA, *args], check=True, cwd=REPO, capture_output=True)


def kill_when(args: list[str], markers: Path, at_least: int, timeout: float = 300) -> None:
    """Start the job in its own process group and SIGKILL the group once work is under way."""
    proc = subprocess.Popen(
        [*ARENA, *args],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if markers.is_dir() and len(list(markers.glob("*.json"))) >= at_least:
                break
            if proc.poll() is not None:
                pytest.fail("the job finished before it could be killed; make the pool larger")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def manifest(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text())


@pytest.mark.slow
def test_kill_and_resume_ingest_and_dedup(tmp_path):
    pool = write_pool(tmp_path / "pool.jsonl", rows=300_000, duplicate_share=0.2)
    common = ["--chunk-mb", "1", "--workers", "2"]

    run_cli("ingest", str(pool), "--out", str(tmp_path / "clean"), *common)
    run_cli(
        "dedup",
        "--exact",
        str(tmp_path / "clean"),
        "--out",
        str(tmp_path / "clean-dedup"),
        "--buckets",
        "8",
        "--workers",
        "2",
    )

    crashed = tmp_path / "crashed"
    kill_when(["ingest", str(pool), "--out", str(crashed), *common], crashed / "_done", at_least=3)
    assert not (crashed / "_manifest.json").exists()
    run_cli("ingest", str(pool), "--out", str(crashed), *common)
    resumed = manifest(crashed)
    assert resumed["resumed_parts"] >= 3
    assert resumed["content_hash"] == manifest(tmp_path / "clean")["content_hash"]
    assert resumed["rows_out"] == 300_000

    crashed_dedup = tmp_path / "crashed-dedup"
    args = [
        "dedup",
        "--exact",
        str(crashed),
        "--out",
        str(crashed_dedup),
        "--buckets",
        "8",
        "--workers",
        "2",
    ]
    kill_when(args, crashed_dedup / "_shuffle" / "_done", at_least=2)
    run_cli(*args)
    clean = manifest(tmp_path / "clean-dedup")
    assert manifest(crashed_dedup)["content_hash"] == clean["content_hash"]
    rows = pd.read_parquet(crashed_dedup, columns=["source_line"])
    assert len(rows) == clean["rows_out"] and rows.source_line.is_unique
    dropped = pd.read_parquet(crashed_dedup / "_dropped", columns=["source_line"])
    assert len(rows) + len(dropped) == 300_000


@pytest.mark.slow
def test_kill_and_resume_semantic_dedup(tmp_path):
    """Killed in its compare stage (a work stage), semantic dedup resumes to the rows and
    drops of an uninterrupted run."""
    from bench.semantic_scale import write_pool as write_vectors

    write_vectors(tmp_path / "vectors", 40_000)
    common = ["--search", "clusters", "--rows-per-cluster", "500", "--rows-per-bucket", "2000"]
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    run_cli("dedup", "--semantic", str(tmp_path / "vectors"), "--out", str(clean), *common)
    args = ["dedup", "--semantic", str(tmp_path / "vectors"), "--out", str(crashed), *common]
    kill_when(args, crashed / "_pairs" / "_done", at_least=3)
    assert not (crashed / "_manifest.json").exists()
    run_cli(*args)
    assert manifest(crashed)["content_hash"] == manifest(clean)["content_hash"]
    dropped = [pd.read_parquet(f / "_dropped").sort_values("prompt_id") for f in (clean, crashed)]
    pd.testing.assert_frame_equal(*(d.reset_index(drop=True) for d in dropped))
    assert len(dropped[0]) + manifest(clean)["rows_out"] == 40_000
