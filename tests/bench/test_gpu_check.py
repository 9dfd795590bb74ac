"""The GPU check's dry run (bench/gpu_check.sh --cpu) on this machine, laid out as a lent
GPU machine receives it: a carry folder as `make gpu-wheels` makes it (model files
without weights, the real prompts; no wheels, as the packages import here), so every
model is built with random weights, as there. Every step must end in results with
finite figures or in a skip that says why: never an error, never a missing step."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STEPS = {"env", "models", "embed", "evalset", "train", "judge", "vllm"}


def numbers(value):
    """Every number in a line, nested ones too (booleans are not figures)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)


def check(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, **kwargs)


def test_the_cpu_dry_run_ends_every_step_in_figures_or_a_reason(shared_data, tmp_path):
    carry, out = tmp_path / "carry", tmp_path / "out"
    made = check([sys.executable, "-m", "bench.gpu_wheels", "--carry", str(carry), "--no-download"])
    assert made.returncode == 0, made.stdout + made.stderr
    assert not list(carry.rglob("*.safetensors"))  # weights never travel
    assert sorted(p.name for p in (carry / "data" / "prompts").iterdir()) == sorted(
        p.name for p in (shared_data / "prompts").glob("*.jsonl")
    )

    done = check(
        ["bash", "bench/gpu_check.sh", "--cpu", "--out", str(out), "--carry", str(carry)],
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {line["step"] for line in lines} == STEPS
    for line in lines:
        assert line["status"] in ("ok", "skip"), line
        if line["status"] == "skip":
            assert len(line["reason"]) > 40, line  # says why, not just that
        assert all(math.isfinite(x) for x in numbers(line)), line
    by = {(line["step"], line["name"]): line for line in lines}

    env = by["env", "machine"]
    assert env["mode"] == "cpu" and env["install"].startswith("nothing installed")
    assert env["carried_mib"]["models"] > 0 and env["carried_mib"]["wheels"] == 0
    # No weights were carried: random ones of the real tokenizers, and the figures that
    # need real weights are skipped with the reason.
    assert {by["models", m]["weights"] for m in ("all-minilm-l6-v2", "smollm2-135m-instruct")} == {
        "random"
    }
    assert by["embed", "agreement"]["status"] == "skip"
    assert by["judge", "parse-rate"]["status"] == "skip"
    assert "weights" in by["judge", "parse-rate"]["reason"]
    assert by["vllm", "engine"]["status"] == "skip" and "64 MiB" in by["vllm", "engine"]["reason"]

    speeds = [line for line in lines if line["name"] == "throughput" and line["step"] == "embed"]
    assert {line["dtype"] for line in speeds} == {"float32", "bfloat16", "float16"}
    assert all(line["rows_per_s"] > 0 and line["rows"] == 12 for line in speeds)

    build = by["evalset", "build"]
    assert build["rows_deduplicated"] > 0 and build["mix_rows"] >= build["diverse_rows"] > 0
    assert build["hard_rows"] > 0 and build["difficulty_errors"] == 0
    assert {"embedded", "clustered", "scored"} <= set(build["stages_s"])

    for kind in ("sft", "dpo"):
        trained = by["train", kind]
        assert trained["steps"] == 2 and trained["losses_finite"] is True
        assert trained["tokens_per_s"] > 0 and trained["gradient_checkpointing"] is True
        reloaded = by["train", f"{kind}-reload"]
        assert reloaded["loads"] is True and reloaded["logits_finite"] is True

    judged = by["judge", "throughput"]
    assert judged["games"] == 2 and judged["games_per_s"] > 0
    assert f"{len(lines)} results in" in done.stdout  # the summary for a person


def test_a_bad_out_is_one_line(tmp_path):
    stray = tmp_path / "file"
    stray.write_text("mine")
    done = check(["bash", "bench/gpu_check.sh", "--cpu", "--out", str(stray)], timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"gpu_check: --out {stray} is a file, not a folder"]
