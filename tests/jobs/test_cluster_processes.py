"""Jobs connect to real `dask scheduler` / `dask worker` processes on loopback, by file or address."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from jobs.cli import main

DASK = shutil.which("dask", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory):
    """A scheduler and one worker declaring GPU=1, as on a GPU cluster."""
    folder = tmp_path_factory.mktemp("cluster")
    path = folder / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = dict(cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen(
        [
            DASK,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            ":0",
            "--scheduler-file",
            str(path),
        ],
        **common,
    )
    worker = subprocess.Popen(
        [
            DASK,
            "worker",
            "--scheduler-file",
            str(path),
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--resources",
            "GPU=1",
            "--no-dashboard",
        ],
        **common,
    )
    try:
        from dask.distributed import Client

        deadline = time.time() + 60
        while not path.exists() and time.time() < deadline:
            time.sleep(0.2)
        with Client(scheduler_file=str(path), timeout=30) as c:
            c.wait_for_workers(1, timeout=60)
            info = c.scheduler_info()["workers"]
            assert [w["resources"] for w in info.values()] == [{"GPU": 1.0}]
        yield path
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(30)
        scheduler.wait(30)


def test_ingest_on_scheduler_file(scheduler_file, tmp_path, capsys):
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    code = main(
        [
            "ingest",
            str(pool),
            "--out",
            str(tmp_path / "out"),
            "--scheduler-file",
            str(scheduler_file),
        ]
    )
    assert code == 0
    assert "connected to scheduler file" in capsys.readouterr().err
    assert len(pd.read_parquet(tmp_path / "out")) == 2


def test_gpu_tasks_reach_the_gpu_worker(scheduler_file, tmp_path, monkeypatch):
    """A stage declaring {"GPU": 1} runs only where a worker offers it."""
    import json

    from dask.distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    with Client(address) as c:
        future = c.submit(os.getpid, resources={"GPU": 1}, pure=False)
        worker_pids = set(c.run(os.getpid).values())
        assert future.result(timeout=60) in worker_pids
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "via env"}\n')
    assert main(["ingest", str(pool), "--out", str(tmp_path / "out")]) == 0
    assert pd.read_parquet(tmp_path / "out").messages[0][0]["content"] == "via env"
