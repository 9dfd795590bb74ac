"""`arena battle` end to end on real prompts, a real transformers model and real recorded
GPT answers, on a real LocalCluster: a run killed with SIGKILL resumes from the caches, a
fourth model costs only its own answers and pairs, and a judge that answers garbage is
reported, never counted (an unknown judge or a roster typo: tests/jobs/test_battle_cli.py).
The subject is the caches and the records, so the answering model and the judge are the
session's tiny Llama (tests/tiny_model.py); the judge's format is enforced, so its noise is
still verdicts. The arena is tests/battle_arena.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schemas import BATTLE
from pipeline.battle.config import BattleConfig
from pipeline.battle.records import RECORD
from pipeline.flows.battle import prepare_battle, run_battle
from tests.battle_arena import battle_argv, write_arena

REPO = Path(__file__).resolve().parents[3]
# answerable_only off: the MT-bench prompt, which no recorded answer covers, battles too,
# so the games without an answer are tested (test_answerable_prompts.py tests the filter).
OPTIONS = dict(max_answer_chars=300, judge_retries=1, judge_chunk=4, answerable_only=False)


def battle(client, roster, evalset, out, *, judge=None, judge_roster=None, cache=None, **options):
    """The battle flow with BattleConfig fields as keywords."""
    setup = prepare_battle(
        roster, BattleConfig(**options), judge=judge, judge_roster=judge_roster, cache=cache
    )
    return run_battle(client, setup, evalset, out, progress=False)


@pytest.fixture(scope="module")
def arena(tmp_path_factory, shared_data, tiny_llama):
    return write_arena(tmp_path_factory.mktemp("arena"), shared_data, tiny_llama)


def _verdict_rows(arena: Path) -> int:
    parts = list((arena / "out" / "_cache" / "verdicts").rglob("part-*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


@pytest.fixture(scope="module")
def first_run(arena, client):
    """Start `arena battle` in a subprocess, SIGKILL it once verdicts are being written,
    then run the same battle again on the test cluster."""
    command = [sys.executable, "-m", "jobs.cli", *battle_argv(arena, "roster3.yaml")]
    command += ["--workers", "1", "--max-answer-chars", "300", "--judge-retries", "1"]
    command += ["--judge-chunk", "4", "--no-answerable-only"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while _verdict_rows(arena) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    alive = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate()
    assert alive, f"the run ended before it could be killed: {stderr[-2000:]}"
    before = _verdict_rows(arena)
    assert 0 < before < 24
    summary = battle(
        client,
        arena / "roster3.yaml",
        arena / "evalset",
        arena / "out",
        judge="tiny-judge",
        judge_roster=arena / "judges.yaml",
        **OPTIONS,
    )
    return summary, before


def _records(arena: Path) -> pa.Table:
    return pa.concat_tables(
        pq.read_table(p) for p in sorted((arena / "out" / "battles").glob("part-*.parquet"))
    )


def _check_records(records: pa.Table, models: int) -> None:
    assert records.schema.equals(RECORD)  # BATTLE, then the prompt's subset and cluster
    assert records.select(BATTLE.names).schema.equals(BATTLE)
    pairs = models * (models - 1) // 2
    assert records.num_rows == 5 * pairs * 2
    keys = {(r["prompt_id"], r["model_a"], r["model_b"], r["game"]) for r in records.to_pylist()}
    assert len(keys) == records.num_rows
    for r in records.to_pylist():
        assert r["model_a"] < r["model_b"] and r["game"] in (1, 2)
        if r["error"] is None:
            assert r["winner"] in ("model_a", "model_b", "tie")
            assert 1 <= r["score_a"] <= 10 and 1 <= r["score_b"] <= 10
        else:
            assert r["winner"] is None and r["score_a"] is None and r["score_b"] is None


@pytest.mark.slow
def test_killed_run_resumes_and_every_record_is_complete(arena, first_run):
    summary, before = first_run
    assert summary["games_from_cache"] == before  # what the killed run judged is kept
    assert summary["games_judged_now"] + summary["games_from_cache"] == 4 * 3 * 2
    assert summary["answers_generated_now"] == 0  # answers were all cached before the kill
    records = _records(arena)
    _check_records(records, 3)
    errors = [r["error"] for r in records.to_pylist() if r["error"]]
    # The recorded GPT answers do not cover the MT-bench prompt: its games say so.
    assert sum(e.startswith("no answer from gpt-") for e in errors) == 6
    assert summary["missing_answer_games"] == 6
    assert summary["judge_errors"] == len(errors) - 6
    combined = pq.read_table(arena / "out" / "combined")
    assert combined.num_rows == 15
    assert (arena / "out" / "summary.md").read_text().startswith("# Battles judged by")

    from arena_models.cache import AnswerCache

    tiny = AnswerCache(arena / "out" / "_cache").model("tiny").read().to_pylist()
    assert sorted(len(r["answers"]) for r in tiny) == [1, 1, 1, 1, 2]  # turn by turn


@pytest.mark.slow
def test_a_fourth_model_costs_only_its_answers_and_new_pairs(arena, client, first_run):
    summary = battle(
        client,
        arena / "roster4.yaml",
        arena / "evalset",
        arena / "out",
        judge="tiny-judge",
        judge_roster=arena / "judges.yaml",
        **OPTIONS,
    )
    answers = summary["answers"]
    assert answers["gpt-4-0613"]["generated"] == 4 and answers["gpt-4-0613"]["cached"] == 0
    for name in ("tiny", "gpt-4-0314", "gpt-3.5-turbo-0125"):
        assert answers[name]["generated"] == 0, name
    assert answers["tiny"]["cached"] == 5
    assert summary["games_from_cache"] == 4 * 3 * 2
    assert summary["games_judged_now"] == 4 * 3 * 2  # 3 new pairs on 4 answered prompts
    _check_records(_records(arena), 4)
    assert summary["battles"] == 5 * 6 * 2


@pytest.mark.slow
def test_garbage_judge_is_counted_as_errors_only(arena, client, first_run, tmp_path):
    summary = battle(
        client,
        arena / "roster3.yaml",
        arena / "evalset",
        tmp_path / "garbage",
        judge="recorded-judge",
        judge_roster=arena / "judges.yaml",
        cache=arena / "out" / "_cache",
        **OPTIONS,
    )
    assert summary["answers_generated_now"] == 0
    assert summary["judge_errors"] == 24 and summary["judge_error_rate"] == 0.8
    # Not one verdict: `arena battle` exits 1 with this reason.
    assert summary["no_verdict"].startswith("no verdict: all 30 games failed: ")
    assert summary["pair_outcomes"] == {"model_a": 0, "model_b": 0, "tie": 0, "error": 15}
    assert all(v == 0 for row in summary["win_matrix"].values() for v in row.values())
    records = pq.read_table(tmp_path / "garbage" / "battles").to_pylist()
    assert all(r["winner"] is None for r in records)
    judged = [r for r in records if not r["error"].startswith("no answer from")]
    assert len(judged) == 24
    assert all(r["error"].startswith("judge backend failed: recorded-judge") for r in judged)


def test_a_vllm_model_without_a_gpu_worker_is_a_clear_error(arena, client, tmp_path):
    """The session cluster's workers hold no GPU slot: the run says so instead of waiting."""
    from core.errors import UserError

    roster = tmp_path / "vllm.yaml"
    roster.write_text(
        (arena / "roster3.yaml").read_text().replace("backend: transformers", "backend: vllm")
    )
    with pytest.raises(UserError, match=r"answers tiny: no worker holds GPU=1; start workers"):
        battle(
            client,
            roster,
            arena / "evalset",
            tmp_path / "out",
            judge="tiny-judge",
            judge_roster=arena / "judges.yaml",
            **OPTIONS,
        )
