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
