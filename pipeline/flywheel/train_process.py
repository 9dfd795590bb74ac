"""A training job in its own short-lived process, started by the Dask task that holds
its resources.

A trainer is the largest object a worker ever holds (weights, gradients, optimizer
state, activations), and what torch and glibc keep of it after `del` stays in the
process. In a child process all of it is returned to the OS when the job ends, the
worker's own imports (vLLM, its kernels) do not add to the trainer's peak, and a
crash inside trl cannot take the worker down. The job and its outcome (the record, or
the error's kind and message) cross the boundary as JSON.

The child ends itself when its parent dies (a killed worker), so a retried task never
races an orphan writing the same checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.errors import UserError
from core.logs import configure_from_environment

ROOT = Path(__file__).resolve().parents[2]


def train_in_process(job) -> dict:
    """Run `training.train` for `job` (a TrainJob) in a child process; returns its record.
    A UserError there is one here; anything else is a RuntimeError with its message."""
    with tempfile.TemporaryDirectory(prefix="arena-train-") as scratch:
        outcome = Path(scratch) / "outcome.json"
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(outcome), str(os.getpid())],
            input=json.dumps(dataclasses.asdict(job)).encode(),
            env={**os.environ, "PYTHONPATH": path},
            check=False,
        )
        if not outcome.exists():
            raise RuntimeError(
                f"training process for {job.out} exited with code {done.returncode} and no result"
                " (killed, or out of memory: see the worker's log)"
            )
        result = json.loads(outcome.read_text())
    if "record" in result:
        return result["record"]
    if result["user_error"]:
        raise UserError(result["message"])
    raise RuntimeError(f"training {job.out}: {result['error']}: {result['message']}")


def _end_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main() -> None:
    outcome, parent = Path(sys.argv[1]), int(sys.argv[2])
    # Ctrl-C reaches this process with the job's whole process group; the job handles it,
    # and this process ends with its worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_from_environment()  # the job's terminal rules and log file, if it set them
    threading.Thread(target=_end_with_parent, args=(parent,), daemon=True).start()
    # lazy: import cycle with pipeline.flywheel.training (its train_task starts this process)
    from pipeline.flywheel.training import TrainConfig, TrainJob, train

    job = json.loads(sys.stdin.read())
    job = TrainJob(**{**job, "config": TrainConfig(**job["config"])})
    try:
        result = {
            "record": train(
                job.config,
                job.data,
                job.base,
                job.out,
                reward_model=job.reward_model,
                overwrite=job.overwrite,
            )
        }
    except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
        result = {
            "error": type(error).__name__,
            "message": str(error),
            "user_error": isinstance(error, UserError),
        }
    tmp = outcome.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(outcome)  # whole or absent


if __name__ == "__main__":
    main()
