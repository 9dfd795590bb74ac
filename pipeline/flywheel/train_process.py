"""A training job in its own short-lived process, started by the Dask task that holds
its resources.

A trainer is the largest object a worker ever holds (weights, gradients, optimizer
state, activations), and what torch and glibc keep of it after `del` stays in the
process. In a child process all of it is returned to the OS when the job ends, the
worker's own imports (vLLM, its kernels) do not add to the trainer's peak, and a
crash inside trl cannot take the worker down. The job and its outcome (the record or
the exception) cross the boundary as pickles: same code, same user, on one machine.

The child ends itself when its parent dies (a killed worker), so a retried task never
races an orphan writing the same checkpoint."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def train_in_process(job) -> dict:
    """Run `training.train` for `job` (a TrainJob) in a child process; returns its record
    or raises what it raised."""
    with tempfile.TemporaryDirectory(prefix="arena-train-") as scratch:
        outcome = Path(scratch) / "outcome.pickle"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(outcome), str(os.getpid())],
            input=pickle.dumps(job),
            env=env,
            check=False,
        )
        if not outcome.exists():
            raise RuntimeError(
                f"training process for {job.out} exited with code {done.returncode} and no result"
                " (killed, or out of memory: see the worker's log)"
            )
        result = pickle.loads(outcome.read_bytes())
    if isinstance(result, BaseException):
        raise result
    return result


def _end_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main() -> None:
    outcome, parent = Path(sys.argv[1]), int(sys.argv[2])
    threading.Thread(target=_end_with_parent, args=(parent,), daemon=True).start()
    job = pickle.loads(sys.stdin.buffer.read())
    from pipeline.flywheel.training import train

    try:
        result = train(
            job.config,
            job.data,
            job.base,
            job.out,
            reward_model=job.reward_model,
            overwrite=job.overwrite,
        )
    except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
        result = error
    try:
        payload = pickle.dumps(result)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: its message does
        payload = pickle.dumps(RuntimeError(f"{type(result).__name__}: {result}"))
    tmp = outcome.with_suffix(".tmp")
    tmp.write_bytes(payload)
    tmp.rename(outcome)  # whole or absent


if __name__ == "__main__":
    main()
