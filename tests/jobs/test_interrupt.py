"""Ctrl-C on a job that runs its embedded cluster. The terminal signals the whole process
group: the job, its worker, and the trainer process the worker started. The job stops
with its one line and exit 130, and no process prints a traceback or a shutdown warning.
Without the embedded workers' preload (jobs/embedded_worker.py) the worker printed a
KeyboardInterrupt traceback above that line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"


def _trainer_running(job: int) -> bool:
    return any(
        "pipeline.flywheel.train_process" in " ".join(p.cmdline())
        for p in psutil.Process(job).children(recursive=True)
    )


def _as_from_a_terminal() -> None:
    """SIGINT as a terminal's job has it: a test run started in the background of a
    script (nohup, `&`) inherits it ignored, and so would the job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _text(path) -> str:
    return path.read_text() if path.exists() else ""


def test_ctrl_c_ends_a_training_job_in_one_line(tmp_path, tiny_llama):
    with open(SAMPLES) as f:
        prompts = [json.loads(next(f))["prompt"][:200] for _ in range(4)]
    (tmp_path / "shard").mkdir()
    rows = [
        {
            "prompt": [{"role": "user", "content": p}],
            "completion": [{"role": "assistant", "content": f"A short answer to: {p[:60]}"}],
        }
        for p in prompts
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "shard" / "part-00000.parquet")
    log = tmp_path / "job.log"
    command = [sys.executable, "-m", "jobs.cli", "train", "sft", "--workers", "1"]
    command += ["--data", str(tmp_path / "shard"), "--base", tiny_llama]
    command += ["--out", str(tmp_path / "model"), "--max-steps", "100000"]  # still training
    steps = tmp_path / "debug.log"  # trl's per-step dicts are DEBUG records: not on the terminal
    command += ["--log-file", str(steps)]
    process = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
        stdout=log.open("w"), stderr=subprocess.STDOUT, preexec_fn=_as_from_a_terminal,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (_trainer_running(process.pid) and "'loss'" in _text(steps)):
            assert process.poll() is None, f"the job ended first: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no training step in 180 s: {log.read_text()}"
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 130, text
    assert text.rstrip().endswith("arena train: interrupted; rerun the same command to resume")
    for noise in ("Traceback", "KeyboardInterrupt", "distributed.nanny", "WARNING"):
        assert noise not in text, text
    assert not (tmp_path / "model").exists()  # nothing half-written where the model goes
