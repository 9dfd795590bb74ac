"""Real `dask scheduler` and `dask worker` processes on loopback, for the tests about
distribution (attaching by scheduler file, placement, workers killed mid-task)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DASK = shutil.which("dask", path=str(Path(sys.executable).parent))


@contextlib.contextmanager
def loopback_cluster(folder: Path, *workers: list[str], expect: int):
    """A scheduler writing `folder/scheduler.json` and one `dask worker` process per
    argument list; yields the scheduler file once `expect` workers have joined."""
    from dask.distributed import Client

    path = folder / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = dict(cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
         "--scheduler-file", str(path)], **common,
    )  # fmt: skip
    started = [
        subprocess.Popen(
            [DASK, "worker", "--scheduler-file", str(path), "--no-dashboard", *args], **common
        )
        for args in workers
    ]
    try:
        deadline = time.time() + 120
        while not path.exists() and time.time() < deadline:
            time.sleep(0.2)
        with Client(scheduler_file=str(path), timeout=120) as client:
            client.wait_for_workers(expect, timeout=180)
        yield path
    finally:
        for process in [*started, scheduler]:
            process.terminate()
        for process in [*started, scheduler]:
            process.wait(30)
