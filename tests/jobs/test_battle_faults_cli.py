"""`arena battle` and `arena judge-eval` against a faulty endpoint (tests/faulty_endpoint.py):
a judge that never gives a readable verdict makes the command exit non-zero with the reason,
and once the judge is back the same commands judge those games, none reused."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from tests.faulty_endpoint import serving, write_arena


@pytest.fixture(scope="module")
def endpoint():
    with serving() as served:
        yield served


@pytest.fixture(scope="module")
def arena(tmp_path_factory, endpoint):
    return write_arena(tmp_path_factory.mktemp("faults"), endpoint[0])


def test_a_judge_without_one_verdict_fails_the_run(client, arena, endpoint, tmp_path, capsys):
    _, state = endpoint
    state.mode = "garbage"
    try:
        code = main(
            [
                "battle",
                "--roster",
                str(arena / "roster.yaml"),
                "--judge-roster",
                str(arena / "judges.yaml"),
                "--judge",
                "judge",
                "--evalset",
                str(arena / "evalset"),
                "--out",
                str(tmp_path / "out"),
                "--judge-retries",
                "0",
                "--scheduler-address",
                client.scheduler.address,
            ]  # fmt: skip
        )
    finally:
        state.mode = "healthy"
    assert code == 1
    reason = "judge reply is not a JSON verdict with score_a, score_b 1-10 (1 attempts)"
    assert f"arena battle: no verdict: all 36 games failed: {reason} (36 of 36)" in (
        capsys.readouterr().err.splitlines()
    )
    records = pq.read_table(tmp_path / "out" / "battles").to_pylist()  # kept for inspection
    assert len(records) == 36 and all(r["winner"] is None and r["error"] for r in records)
    assert "**no verdict: all 36 games failed" in (tmp_path / "out" / "summary.md").read_text()


def test_a_judge_that_never_answered_is_asked_again(client, arena, endpoint, tmp_path, capsys):
    """The judge's endpoint down: `arena battle` and `arena judge-eval` exit non-zero with
    the reason; once it is back, the same commands judge those games, none reused. (No
    retries, so the 500s are quick; no stalls, so a long timeout never fires.)"""
    url, state = endpoint
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        f"models:\n  - {{name: judge, model: judge, backend: openai, endpoint: '{url}',"
        f" timeout: 10, retries: 0}}\n"
    )
    pair = {"prompt": "Say hi", "model_x": "m1", "answer_x": "hi", "model_y": "m2"}
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {**pair, "pair_id": f"p{i}", "answer_y": f"hello {i}", "crowd_votes": {"x": 2}}
            )
            + "\n"
            for i in range(3)
        )
    )
    judge = ["--judge-roster", str(judges), "--judge", "judge"]
    cluster = ["--scheduler-address", client.scheduler.address]
    battle = ["battle", "--roster", str(arena / "roster.yaml"), "--evalset", str(arena / "evalset")]
    battle += ["--out", str(tmp_path / "battle"), *judge, *cluster]
    judge_eval = ["judge-eval", str(pairs), "--out", str(tmp_path / "eval"), *judge, *cluster]
    state.mode = "judge-down"
    try:
        assert main(battle) == 1
        assert main(judge_eval) == 2
    finally:
        state.mode = "healthy"
    err = capsys.readouterr().err
    assert "arena battle: no verdict: all 36 games failed: judge backend failed" in err
    assert "judge judge gave no verdict in any of 6 games: judge backend failed" in err
    assert main(battle) == 0 and main(judge_eval) == 0
    summary = json.loads((tmp_path / "battle" / "summary.json").read_text())
    assert summary["games_judged_now"] == 36 and summary["judge_errors"] == 0
    run = json.loads((tmp_path / "eval" / "judge_eval.json").read_text())["run"]
    assert (run["judged_now"], run["from_cache"], run["errors_now"]) == (6, 0, 0)
