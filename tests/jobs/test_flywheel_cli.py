"""`arena flywheel`: mistakes are one line before any cluster starts; a real iteration
(SFT, reward model, GRPO) runs every phase and records it, and the same config in another
folder, killed once it has selected, wrote byte-identical shards. (A killed iteration
resuming where it stopped is checked on the main job: tests/conftest.py `main_run`.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main
from tests.kill_at_step import kill_at_step, sft_shard_bytes

REPO = Path(__file__).resolve().parents[2]
ANSWERS = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"


def one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_config_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["flywheel", "--out", str(tmp_path / "o")]) == 2
    assert one_error_line(capsys) == (
        "arena flywheel: error: arena flywheel needs --config FILE (or a packaged name: demo, paper)"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("target: smollm2-greedy\nsft_gap: [3, 12]\n")
    assert main(["flywheel", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "sft_gap [3.0, 12.0]: expected score gaps between 0 and 9" in one_error_line(capsys)
    bad.write_text("target: gpt-4-0314\npool: .\nevalset: .\n")
    assert main(["flywheel", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "target gpt-4-0314 is a recorded entry" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_status_of_a_folder_without_a_flywheel(tmp_path, capsys):
    assert main(["flywheel", "status", "--out", str(tmp_path)]) == 0
    assert "no flywheel run here yet" in capsys.readouterr().out


def test_train_mistakes_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [
        "train",
        "sft",
        "--data",
        str(tmp_path / "empty"),
        "--base",
        "builtin:smollm2-135m-instruct",
    ]
    assert main([*argv, "--out", str(tmp_path / "ckpt")]) == 2
    assert "has no" in one_error_line(capsys)


def test_an_empty_slice_is_a_one_line_error(client, tmp_path):
    from core.errors import UserError
    from pipeline.flows.flywheel import take_slice
    from pipeline.flows.ingest import ingest, pool_files
    from pipeline.flywheel.config import FlywheelConfig

    (tmp_path / "pool.jsonl").write_text('{"prompt": "What is 2 + 2?"}\n')
    ingest(client, pool_files([tmp_path / "pool.jsonl"]), tmp_path / "pool")
    config = FlywheelConfig(target="t", slices=9)
    empty = next(
        k for k in range(1, 10) if not _holds(k, tmp_path / "pool")
    )  # the one row lands in one slice of nine
    with pytest.raises(UserError, match=f"slice D{empty} of 9 is empty \\(1 pool rows\\)"):
        take_slice(client, config, str(tmp_path / "pool"), empty, tmp_path / "out")


def _holds(k: int, pool: Path) -> bool:
    import pandas as pd

    from pipeline.flywheel.slices import slice_of

    return any(slice_of(p, 9) == k for p in pd.read_parquet(pool).prompt_id)


@pytest.mark.slow
def test_an_iteration_runs_every_stage_and_shards_are_reproducible(client, tmp_path, tiny_llama):
    """The subject is the phases, the state file and the shards, so every model is the
    session's tiny Llama (tests/tiny_model.py) on real vLLM and real trl."""
    from pipeline.flows.ingest import ingest, pool_files

    lines = (REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl").read_text().splitlines()
    (tmp_path / "pool.jsonl").write_text("\n".join(lines[:40]) + "\n")
    (tmp_path / "eval.jsonl").write_text("\n".join(lines[100:104]) + "\n")
    ingest(client, pool_files([tmp_path / "pool.jsonl"]), tmp_path / "pool")
    ingest(client, pool_files([tmp_path / "eval.jsonl"]), tmp_path / "evalset")
    vllm = f"backend: vllm, path: '{tiny_llama}', enforce_eager: true, max_model_len: 2048"
    (tmp_path / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 12}\nmodels:\n"
        f"  - {{name: tiny-greedy, {vllm}, sampling: {{temperature: 0.0}}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{ANSWERS}'}}\n"
    )
    (tmp_path / "judges.yaml").write_text(
        f"models:\n  - {{name: judge, {vllm}, sampling: {{temperature: 0.0, max_tokens: 200}}}}\n"
    )
    (tmp_path / "flywheel.yaml").write_text(
        "target: tiny-greedy\nroster: roster.yaml\njudge_roster: judges.yaml\njudge: judge\n"
        "pool: pool\nevalset: evalset\ncache: cache\nphases: [sft, reward, rl]\n"
        "judge_scoring: expected\nsft_gap: [0]\nreward_gap: [0]\nslices: 2\nslice_prompts: 3\n"
        "rate_prompts: 2\nbootstrap: 10\ntrain: {max_steps: 1, max_length: 256}\n"
        "train_by_kind: {reward: {max_length: 1024}, rl: {rl_max_completion_length: 16}}\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def command(out):
        return [sys.executable, "-m", "jobs.cli", "flywheel", "--config",
                str(tmp_path / "flywheel.yaml"), "--out", str(out), "--workers", "1"]  # fmt: skip

    first = tmp_path / "first"
    done = subprocess.run(command(first), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    written = sft_shard_bytes(first)
    assert written
    it = json.loads((first / "flywheel.json").read_text())["iterations"]["1"]
    steps = it["steps"]
    assert it["status"] == "done" and steps["sft.train"]["trained_rows"] > 0
    # The paper's last phases: a reward model on D2's pairs, then GRPO against it.
    assert steps["reward.select"]["rows"] > 0 and steps["reward.train"]["trained_rows"] > 0
    assert steps["rl.prompts"]["rows"] > 0 and steps["rl.train"]["trained_rows"] > 0
    assert it["final_model"]["name"] == "tiny-greedy-it1-rl"
    assert "rating tiny-greedy" in steps["rate"]["line"]
    # What the iteration cost, summed over its battle runs and trainings.
    cost = it["cost"]["total"]
    assert cost["verdicts"]["computed"] > 0 and cost["prompt_tokens"] > 0
    assert sum(cost["worker_seconds"].values()) > 0
    status = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "flywheel", "status", "--out", str(first)],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert "iteration 1: done" in status.stdout and "-> tiny-greedy-it1-rl" in status.stdout

    # The same config in another folder (answers and verdicts from the shared cache).
    second = tmp_path / "second"
    kill_at_step(
        command(second), env, second / "flywheel.json", "sft.select", tmp_path / "second.log"
    )
    assert sft_shard_bytes(second) == written
