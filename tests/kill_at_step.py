"""Kill a flywheel at a recorded step: start a job in its own process group and SIGKILL
the whole group (driver, embedded cluster, workers) once its flywheel.json records the
step. Shared by the main-job fixture (tests/conftest.py) and the flywheel CLI test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kill_at_step(command, env, state: Path, step: str, log: Path, timeout: float = 2400) -> None:
    """Run `command` until `state` (a flywheel.json) records `step` of iteration 1, then
    SIGKILL it; an AssertionError with the log's tail if it ends or times out first."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, start_new_session=True,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not _recorded(state, step):
            if process.poll() is not None:
                raise AssertionError(f"the job ended before {step}: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{step} not reached in {timeout} s: {log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sft_shard_bytes(flywheel: Path) -> dict[str, bytes]:
    """Part name -> bytes of iteration 1's SFT shard under a flywheel folder."""
    folder = flywheel / "iteration-1" / "sft" / "data"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*.parquet"))}


def _recorded(state: Path, step: str) -> bool:
    if not state.exists():  # written atomically, so never read half-written
        return False
    return step in json.loads(state.read_text())["iterations"].get("1", {}).get("steps", {})
