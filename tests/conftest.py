"""Shared fixtures: a real Dask LocalCluster for the whole session, and paths to real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two cores here: torch threads must not oversubscribe them, and no hub access.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: tests need ../shared beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def llmfao_votes(shared_data) -> Path:
    """The real LLMFAO crowd votes (8,931 battles, 59 models) as a CSV of battles."""
    return shared_data / "battles" / "llmfao_crowd_comparisons.csv"


@pytest.fixture(scope="session")
def client():
    """A real two-worker LocalCluster (processes), shared by every test that needs Dask."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="session")
def gpu_worker():
    """gpu_worker() -> a context giving a client of a fresh one-worker LocalCluster whose
    worker holds GPU=1, as vLLM tasks need (fresh: tests count the worker's engines)."""
    import contextlib

    from dask.distributed import Client, LocalCluster

    @contextlib.contextmanager
    def start():
        with (
            LocalCluster(
                n_workers=1,
                threads_per_worker=1,
                processes=True,
                resources={"GPU": 1},
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client

    return start


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    """A tiny real Llama checkpoint with SmolLM2's tokenizer and random weights (see
    tests/tiny_model.py), built once per session: for tests whose subject is plumbing."""
    from tests.tiny_model import build_tiny_llama

    return str(build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama"))


@pytest.fixture(scope="session")
def main_run(tmp_path_factory):
    """`arena run`, the main job, once per session in its own embedded LocalCluster, on a
    small real pool: eval set, battles of real vLLM models and recorded GPT-4 answers
    judged by SmolLM2, the judge measured against people, the leaderboard, and a first
    flywheel iteration (SFT then DPO, one trl step each, the checkpoint re-rated).

    It is SIGKILLed once (its whole process group: driver, cluster, workers) when the
    flywheel has recorded its SFT selection, then rerun to completion, so its readers
    (the main-job tests, the notebooks) check that a resumed run holds exactly what an
    uninterrupted one must. Returns (out folder, the rerun's finished process)."""
    import subprocess
    import sys

    from bench.small_main_job import small_main_job
    from tests.kill_at_step import kill_at_step, sft_shard_bytes

    tmp = tmp_path_factory.mktemp("main_run")
    out = tmp / "run"
    command = [sys.executable, "-m", "jobs.cli", "run", *small_main_job(tmp), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    kill_at_step(command, env, out / "flywheel" / "flywheel.json", "sft.select", tmp / "killed.log")
    selected = sft_shard_bytes(out / "flywheel")
    assert selected, "no SFT shard after sft.select"
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stderr[-3000:]
    # The rerun took the selection the killed run recorded, byte for byte.
    assert sft_shard_bytes(out / "flywheel") == selected
    return out, done


# Where the minutes go: after pytest's slowest-25 table, one line per test file with its
# wall time (setup, call and teardown of its tests, shared fixtures counted where built).
_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS:
        return
    terminalreporter.write_sep("=", "wall time per test file")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_FILE_SECONDS.values()):8.1f} s  in all")
