"""The flywheel config (paper defaults per iteration), its state file, and the one-line
errors an iteration gives before any cluster work."""

from __future__ import annotations

import json

import pytest

from arena_models.roster import load_roster
from core.errors import UserError
from pipeline.flows.flywheel import (
    FlywheelSetup,
    IterationRun,
    plan_iteration,
    prepare_flywheel,
    run_step,
)
from pipeline.flywheel.config import FlywheelConfig
from pipeline.flywheel.state import FlywheelState, render_status
from pipeline.flywheel.steps import Step, StepResult

ROSTER = """models:
  - {name: small, backend: vllm, path: 'builtin:smollm2-135m-instruct'}
  - {name: gpt-4-0314, backend: recorded, path: '%s'}
"""


@pytest.fixture()
def arena(tmp_path):
    from pathlib import Path

    answers = Path(__file__).resolve().parents[3] / "arena_models/rosters/answers/gpt-4-0314.jsonl"
    (tmp_path / "roster.yaml").write_text(ROSTER % answers)
    (tmp_path / "pool").mkdir()
    (tmp_path / "evalset").mkdir()
    return tmp_path


def write_config(folder, **keys) -> str:
    base = {"target": "small", "roster": "roster.yaml", "pool": "pool", "evalset": "evalset"}
    (folder / "flywheel.yaml").write_text(json.dumps({**base, **keys}))  # JSON is YAML
    return str(folder / "flywheel.yaml")


def test_paper_defaults_per_iteration(arena):
    config = FlywheelConfig.load(write_config(arena))
    assert config.iterations == 3  # D1..D9, three slices an iteration
    assert [config.gap("sft", i) for i in (1, 2, 3)] == [3.0, 1.0, 1.0]
    assert config.gap("dpo", 2) == 2.0
    assert [config.slice_of(k, 1) for k in ("sft", "dpo", "reward")] == [1, 2, 3]
    assert [config.slice_of(k, 3) for k in ("sft", "dpo", "reward")] == [7, 8, 9]
    # Paths in the file are relative to it.
    assert config.pool == str(arena / "pool")


def test_packaged_configs_load():
    demo = FlywheelConfig.load("demo")
    assert demo.phases == ("sft", "dpo") and demo.iterations == 4
    paper = FlywheelConfig.load("paper")
    assert paper.phases == ("sft", "dpo", "reward", "rl") and paper.sft_gap == (3.0, 1.0)


def test_phases_run_in_the_methods_order(arena):
    config = FlywheelConfig.load(write_config(arena, phases=["dpo", "sft"]))
    assert config.phases == ("sft", "dpo")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"sft_gap": [12]}, "sft_gap [12.0]: expected score gaps between 0 and 9"),
        ({"dpo_gap": -1}, "dpo_gap [-1.0]: expected score gaps between 0 and 9"),
        ({"phases": ["rl"]}, "phase rl needs phase reward"),
        ({"phases": ["ppo"]}, "phases ['ppo']: expected some of sft, dpo, reward, rl"),
        ({"stages": ["sft"]}, "`stages` is now `phases`"),
        ({"slices": 2}, "2 slices hold no iteration"),
        ({"colour": 1}, "unknown key 'colour'"),
        ({"judge_scoring": "loud"}, "judge_scoring 'loud'"),
    ],
)
def test_bad_settings_are_one_line_errors(arena, keys, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        FlywheelConfig.load(write_config(arena, **keys))
    assert "\n" not in str(err.value)


def test_missing_target_and_missing_file(arena):
    (arena / "empty.yaml").write_text("roster: roster.yaml\n")
    with pytest.raises(UserError, match="`target`"):
        FlywheelConfig.load(arena / "empty.yaml")
    with pytest.raises(UserError, match="no such flywheel config"):
        FlywheelConfig.load(arena / "nope.yaml")


def test_prepare_refuses_what_cannot_be_trained(arena):
    out = arena / "out"
    with pytest.raises(UserError, match="'nobody' is not in the roster"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena, target="nobody")), out)
    with pytest.raises(UserError, match="target gpt-4-0314 is a recorded entry"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena, target="gpt-4-0314")), out)
    with pytest.raises(UserError, match="iteration 5: 9 slices give iterations 1..3"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena)), out, 5)
    with pytest.raises(UserError, match="has no flywheel state; run iteration 1"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena)), out, 2)
    with pytest.raises(UserError, match="unknown key 'colour'"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena, train={"colour": 1})), out)
    with pytest.raises(UserError, match="pool .*nowhere: no such folder"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena, pool="nowhere")), out)


def test_a_checkpoint_that_does_not_load_is_refused(arena):
    (arena / "broken").mkdir()
    (arena / "roster.yaml").write_text(
        f"models:\n  - {{name: small, backend: vllm, path: '{arena / 'broken'}'}}\n"
        "  - {name: other, backend: vllm, path: 'builtin:smollm2-135m-instruct'}\n"
    )
    with pytest.raises(UserError, match=r"checkpoint .*broken does not load: no config.json"):
        prepare_flywheel(FlywheelConfig.load(write_config(arena)), arena / "out")


def test_state_records_steps_and_refuses_another_config(tmp_path):
    state = FlywheelState.open(tmp_path, {"a": 1})
    assert state.done(1, "sft.battle") is None
    state.update(1, start_model={"name": "m", "path": "/p"}, slices={"sft": 1})
    state.record(1, "sft.battle", StepResult("12 games", details={"games": 12}))
    again = FlywheelState.open(tmp_path, {"a": 1})
    assert again.done(1, "sft.battle") == StepResult("12 games", details={"games": 12})
    with pytest.raises(UserError, match="another flywheel config"):
        FlywheelState.open(tmp_path, {"a": 2})
    with pytest.raises(UserError, match="iteration 1 has not finished"):
        again.require_finished(1)
    text = render_status(again, tmp_path)
    assert "iteration 1: running; from m (/p)" in text and "sft.battle" in text
    assert "no flywheel run here yet" in render_status(None, tmp_path / "x")


def test_a_step_result_is_one_flat_entry_of_the_state_file(tmp_path):
    """Readers of flywheel.json (the main job's report, the notebook) see `rows`,
    `trained_rows`, ... beside the paths; reading the entry back gives the same result."""
    (tmp_path / "data").mkdir()
    result = StepResult(
        "4 sft rows", folder=str(tmp_path / "data"), rows=4, details={"dropped": {"tie": 2}}
    )
    state = FlywheelState.open(tmp_path, {"a": 1})
    state.record(1, "sft.select", result)
    entry = json.loads((tmp_path / "flywheel.json").read_text())["iterations"]["1"]["steps"]
    assert {k: v for k, v in entry["sft.select"].items() if k != "finished"} == {
        "line": "4 sft rows",
        "folder": str(tmp_path / "data"),
        "rows": 4,
        "dropped": {"tie": 2},
        "status": "done",
        "order": 1,
    }
    assert FlywheelState.open(tmp_path, {"a": 1}).done(1, "sft.select") == result
    (tmp_path / "data").rmdir()  # an output gone: the step is done again
    assert state.done(1, "sft.select") is None


def test_the_plan_lists_every_step_in_the_order_it_runs():
    config = FlywheelConfig(target="t", phases=("sft", "dpo", "reward", "rl"))
    plan = plan_iteration(config, 2)
    assert [s.name for s in plan] == [
        "pool",
        *("slice D4", "sft.battle", "sft.select", "sft.train"),
        *("slice D5", "dpo.battle", "dpo.select", "dpo.train"),
        *("slice D6", "reward.battle", "reward.select", "reward.train"),
        *("rl.prompts", "rl.train"),
        "rate",
    ]
    # The reward model is no policy: the re-rated model is the last of these.
    assert [s.policy for s in plan if s.policy] == ["t-it2-sft", "t-it2-dpo", "t-it2-rl"]
    assert {s.name for s in plan if s.needs_model_of == "reward.train"} == {
        "rl.prompts",
        "rl.train",
    }


def test_a_rerun_skips_recorded_steps_and_goes_on_from_their_checkpoints(arena):
    """The killed run recorded SFT; the rerun trains DPO from the SFT checkpoint without
    training SFT again, and skips RL (unrecorded) when no reward model was trained."""
    small, gpt4 = load_roster(arena / "roster.yaml")
    setup = FlywheelSetup(FlywheelConfig(target="small"), 1, small, [gpt4], gpt4, {})
    (arena / "ckpt-sft").mkdir()
    (arena / "ckpt-dpo").mkdir()
    calls = []

    def train(run, phase):
        calls.append((phase, run.model.name))
        return StepResult(f"{phase} trained", checkpoint=str(arena / f"ckpt-{phase}"))

    def untrained(run):
        return StepResult("no reward rows selected")

    def never(run):
        raise AssertionError("rl ran without a reward model")

    plan = [
        Step("sft.train", train, ("sft",), policy="small-it1-sft"),
        Step("dpo.train", train, ("dpo",), policy="small-it1-dpo"),
        Step("reward.train", untrained),
        Step("rl.train", never, needs_model_of="reward.train"),
    ]
    out = arena / "out"
    killed = IterationRun(None, setup, out, out / "cache", model=small)
    run_step(FlywheelState.open(out, {"a": 1}), killed, plan[0])
    rerun = IterationRun(None, setup, out, out / "cache", model=small)
    state = FlywheelState.open(out, {"a": 1})
    for step in plan:
        run_step(state, rerun, step)
    assert calls == [("sft", "small"), ("dpo", "small-it1-sft")]
    assert rerun.model.name == "small-it1-dpo"
    assert rerun.model.options["path"] == str(arena / "ckpt-dpo")
    assert list(rerun.results) == ["sft.train", "dpo.train", "reward.train"]
    assert state.done(1, "rl.train") is None
