"""Battles against a faulty OpenAI-compatible endpoint: a real HTTP server on loopback that
answers every model and the judge, and is scripted (seeded, by request content) to fail
20% of requests with 500 and stall 10% past the client's timeout. A flaky run must end
with every answer and the same outputs as a run against the healthy server; a judge that
never gives a readable verdict fails the run with the reason (the commands' exit codes:
tests/jobs/test_battle_faults_cli.py); the server is tests/faulty_endpoint.py."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import prepare_battle, run_battle
from tests.faulty_endpoint import serving, write_arena


@pytest.fixture(scope="module")
def endpoint():
    with serving() as served:
        yield served


@pytest.fixture(scope="module")
def arena(tmp_path_factory, endpoint):
    return write_arena(tmp_path_factory.mktemp("faults"), endpoint[0])


def battle(client, arena: Path, out: Path) -> dict:
    setup = prepare_battle(
        arena / "roster.yaml",
        BattleConfig(judge_chunk=6, answer_chunk=3),
        judge="judge",
        judge_roster=arena / "judges.yaml",
    )
    return run_battle(client, setup, arena / "evalset", out, progress=False)


def outputs(out: Path) -> dict[str, list]:
    """Records and pairs in order; the caches as sets of rows: part names are times, and a
    task Dask ran twice (a lost worker connection under load) appends a key twice."""
    tables = {name: pq.read_table(out / name).to_pylist() for name in ("battles", "combined")}
    for cache in ("answers", "verdicts"):
        rows = pq.read_table(out / "_cache" / cache).to_pylist()
        tables[cache] = sorted({json.dumps(r, sort_keys=True) for r in rows})
    return tables


def test_a_flaky_endpoint_is_retried_to_the_healthy_outputs(client, arena, endpoint, tmp_path):
    _, state = endpoint
    state.mode = "healthy"
    healthy = battle(client, arena, tmp_path / "healthy")
    state.mode = "flaky"
    flaky = battle(client, arena, tmp_path / "flaky")
    state.mode = "healthy"
    assert state.injected["500"] >= 5 and state.injected["stall"] >= 3, state.injected
    for summary in (healthy, flaky):
        assert summary["no_verdict"] is None
        assert all(a["failed"] == 0 and a["generated"] == 6 for a in summary["answers"].values())
        assert summary["games_judged_now"] == 6 * 3 * 2 and summary["judge_errors"] == 0
    got, want = outputs(tmp_path / "flaky"), outputs(tmp_path / "healthy")
    for name in want:
        extra = [r for r in got[name] if r not in want[name]]
        lacking = [r for r in want[name] if r not in got[name]]
        assert got[name] == want[name], (name, extra[:2], lacking[:2])


def test_a_flywheel_battle_without_a_verdict_is_not_done(client, arena, endpoint, tmp_path):
    """A flywheel's slice battle whose every game failed raises, is not recorded as done,
    and runs again (here, judged) on the next try."""
    from arena_models.roster import load_roster
    from core.errors import UserError
    from pipeline.flows.flywheel import FlywheelSetup, IterationRun, battle_step, run_step
    from pipeline.flywheel.config import FlywheelConfig
    from pipeline.flywheel.state import FlywheelState
    from pipeline.flywheel.steps import Step, StepResult

    url, state = endpoint
    alpha, beta, gamma = load_roster(arena / "roster.yaml")
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        f"models:\n  - {{name: judge, model: judge, backend: openai, endpoint: '{url}',"
        " timeout: 10, retries: 0}\n"
    )
    [judge] = load_roster(judges)
    config = FlywheelConfig(target="alpha", roster=str(arena / "roster.yaml"))
    setup = FlywheelSetup(config, 1, alpha, [beta, gamma], judge, {})
    flywheel = FlywheelState.open(tmp_path / "fw", {"test": 1})
    run = IterationRun(client, setup, tmp_path / "fw", tmp_path / "cache", model=alpha)
    run.results["slice D1"] = StepResult("the slice", folder=str(arena / "evalset"))
    step = Step("sft.battle", battle_step, ("sft", "slice D1"))

    state.mode = "judge-down"
    try:
        with pytest.raises(UserError, match="no verdict: all 24 games failed: judge backend"):
            run_step(flywheel, run, step)
    finally:
        state.mode = "healthy"
    assert flywheel.done(1, "sft.battle") is None and "sft.battle" not in run.results
    run_step(flywheel, run, step)
    assert run.results["sft.battle"].details["judge_errors"] == 0
    assert flywheel.done(1, "sft.battle").details["games"] == 24
