"""A run's cost (pipeline/battle/cost.py): a real battle of the tiny Llama and recorded GPT
answers, judged by the tiny Llama on the session cluster, reports the tokens its records
and answers carry and the tasks' seconds; its rerun reports every answer and verdict from
the caches and nothing computed. Summing blocks (a flywheel iteration's battle runs and
trainings, pipeline/flywheel/cost.py) adds rows of the same stage and model and
recomputes the rates. The arena is tests/battle_arena.py."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from arena_models.cache import AnswerCache
from pipeline.battle.config import BattleConfig
from pipeline.battle.cost import add_costs, battle_cost, cost_markdown, relabel, stage_row
from pipeline.flows.battle import prepare_battle, run_battle
from pipeline.flywheel.cost import iteration_cost
from pipeline.flywheel.report import write_iteration_report
from tests.battle_arena import write_arena

# Two of the arena's prompts, answered or not by the recorded GPT answers (answerable_only
# off): both kinds of answer row, and games without an answer, at half a run's cost.
OPTIONS = dict(max_answer_chars=300, judge_retries=1, judge_chunk=4, answerable_only=False, limit=2)
GPT = ("gpt-4-0314", "gpt-3.5-turbo-0125")


def _results(*tasks: tuple[int, int, float]) -> list[dict]:
    return [{"prompt_tokens": p, "completion_tokens": c, "seconds": s} for p, c, s in tasks]


def _block(judge_seconds: float, games: int) -> dict:
    answers = stage_row(
        "answers", "m", {"GPU": 2.0}, _results((10, 5, 1.5), (20, 7, 2.5)), 3.0,
        from_cache=1, computed=4, failed=1,
    )  # fmt: skip
    judge = stage_row(
        "judge", "j", {}, _results((100, 30, judge_seconds)), judge_seconds,
        from_cache=2, computed=games, failed=0, games=games,
    )  # fmt: skip
    return battle_cost([answers, judge], 3.0 + judge_seconds + 1.0)


def test_a_block_counts_tokens_seconds_by_resource_and_games_per_hour():
    block = _block(judge_seconds=6.0, games=12)
    answers, judge = block["stages"]
    assert answers["resource"] == "GPU" and answers["tasks"] == 2
    assert answers["worker_seconds"] == {"GPU": 8.0}  # (1.5 + 2.5) s holding 2 GPU slots
    assert (answers["prompt_tokens"], answers["completion_tokens"]) == (30, 12)
    assert "games_per_hour" not in answers
    assert judge["worker_seconds"] == {"CPU": 6.0}
    assert judge["games_per_hour"] == 12 / 6.0 * 3600
    total = block["total"]
    assert total["worker_seconds"] == {"GPU": 8.0, "CPU": 6.0}
    assert (total["prompt_tokens"], total["completion_tokens"]) == (130, 42)
    assert total["answers"] == {"from_cache": 1, "computed": 4, "failed": 1}
    assert total["verdicts"] == {"from_cache": 2, "computed": 12, "failed": 0}
    assert total["wall_seconds"] == 10.0 and total["games_per_hour"] == 12 / 10.0 * 3600
    json.dumps(block)  # what summary.json holds


def test_blocks_sum_by_stage_and_model_and_rates_are_recomputed():
    first, second = _block(6.0, 12), _block(2.0, 0)
    summed = add_costs([first, None, second])
    answers, judge = summed["stages"]
    assert answers["worker_seconds"] == {"GPU": 16.0} and answers["tasks"] == 4
    assert answers["computed"] == 8 and answers["prompt_tokens"] == 60
    assert judge["games"] == 12 and judge["wall_seconds"] == 8.0
    assert judge["games_per_hour"] == 12 / 8.0 * 3600
    assert summed["total"]["wall_seconds"] == 16.0
    assert summed["total"]["verdicts"] == {"from_cache": 4, "computed": 12, "failed": 0}
    assert summed["total"]["games_per_hour"] == 12 / 16.0 * 3600
    # A second run judging nothing has no rate; relabelled steps stay apart.
    assert second["stages"][1]["games_per_hour"] is None
    apart = add_costs([relabel(first, "battles"), relabel(second, "flywheel")])
    assert [r["stage"] for r in apart["stages"]] == [
        "battles answers", "battles judge", "flywheel answers", "flywheel judge",
    ]  # fmt: skip
    assert add_costs([None]) is None


def test_an_iteration_sums_its_battle_runs_and_trainings(tmp_path):
    for phase, seconds in (("sft", 6.0), ("rate", 2.0)):
        run = tmp_path / phase / "battles"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"cost": _block(seconds, 12)}))
    model = tmp_path / "sft" / "checkpoint"
    record = {"seconds": 40.5, "train_tokens": 9000, "config": {"resources": {"GPU": 1.0}}}
    (model / "_training.json").parent.mkdir(parents=True)
    (model / "_training.json").write_text(json.dumps(record))
    cost = iteration_cost(tmp_path)
    rows = {(r["stage"], r["model"]): r for r in cost["stages"]}
    assert list(rows) == [  # phase by phase, as the iteration ran them
        ("sft answers", "m"), ("sft judge", "j"), ("sft train", "sft/checkpoint"),
        ("rate answers", "m"), ("rate judge", "j"),
    ]  # fmt: skip
    assert rows[("sft train", "sft/checkpoint")]["worker_seconds"] == {"GPU": 40.5}
    total = cost["total"]
    assert total["worker_seconds"] == {"GPU": 8.0 * 2 + 40.5, "CPU": 6.0 + 2.0}
    assert total["train_tokens"] == 9000 and total["verdicts"]["computed"] == 24
    assert total["wall_seconds"] == 10.0 + 6.0 + 40.5
    table = cost_markdown(cost)
    assert "| sft train | sft/checkpoint | GPU |" in table and "trained tokens" in table
    report = write_iteration_report(tmp_path, {"steps": {}}, 1).read_text()
    assert "## Cost\n\nWhat each phase computed" in report and table.rstrip() in report
    assert iteration_cost(tmp_path / "nothing") is None


@pytest.fixture(scope="module")
def arena(tmp_path_factory, shared_data, tiny_llama):
    return write_arena(tmp_path_factory.mktemp("arena"), shared_data, tiny_llama)


def _battle(client, arena: Path, out: Path) -> dict:
    setup = prepare_battle(
        arena / "roster3.yaml",
        BattleConfig(**OPTIONS),
        judge="tiny-judge",
        judge_roster=arena / "judges.yaml",
    )
    return run_battle(client, setup, arena / "evalset", out, progress=False)


@pytest.mark.slow
def test_a_run_reports_what_it_computed_and_its_rerun_what_the_caches_served(
    arena, client, tmp_path
):
    out = tmp_path / "out"
    summary = _battle(client, arena, out)
    cost = json.loads((out / "summary.json").read_text())["cost"]
    assert cost == json.loads(json.dumps(summary["cost"]))
    rows = {r["model"]: r for r in cost["stages"]}
    assert [r["stage"] for r in cost["stages"]] == ["answers"] * 3 + ["judge"]
    cache = AnswerCache(out / "_cache")
    for name in ("tiny", *GPT):
        row, answers = rows[name], cache.model(name).read().to_pylist()
        assert row["from_cache"] == 0 and row["computed"] == len(answers)
        assert row["prompt_tokens"] == sum(a["prompt_tokens"] for a in answers)
        assert row["completion_tokens"] == sum(a["completion_tokens"] for a in answers)
        assert row["resource"] == "CPU" and row["worker_seconds"]["CPU"] > 0
        assert row["computed"] + row["failed"] == 2, name
    assert rows["tiny"]["computed"] == 2 and rows["tiny"]["completion_tokens"] > 0
    judge = rows["tiny-judge"]
    records = pq.read_table(out / "battles").to_pylist()
    judged = [r for r in records if not (r["error"] or "").startswith("no answer from")]
    games = len(judged)
    assert games > 0 and judge["computed"] == judge["games"] == games
    assert judge["from_cache"] == 0
    assert judge["prompt_tokens"] == sum(r["prompt_tokens"] for r in judged) > 0
    assert judge["completion_tokens"] == sum(r["completion_tokens"] for r in judged) > 0
    assert judge["failed"] == sum(r["error"] is not None for r in judged)
    assert judge["games_per_hour"] == round(games / judge["wall_seconds"] * 3600, 1)
    total = cost["total"]
    answered = sum(rows[m]["computed"] for m in ("tiny", *GPT))
    assert total["verdicts"]["computed"] == games and total["answers"]["computed"] == answered
    assert total["prompt_tokens"] == sum(r["prompt_tokens"] for r in cost["stages"])
    assert total["wall_seconds"] >= sum(r["wall_seconds"] for r in cost["stages"])
    assert f"| judge | tiny-judge | CPU | 0 | {games} |" in (out / "summary.md").read_text()

    again = _battle(client, arena, out)["cost"]
    *answer_rows, judge = again["stages"]
    for row in answer_rows:
        name, failed = row["model"], rows[row["model"]]["failed"]
        assert row["computed"] == 0 and row["prompt_tokens"] == row["completion_tokens"] == 0
        assert row["from_cache"] == 2 - failed, name
        # An answer that failed is asked for again, and fails again: only such tasks run.
        assert row["failed"] == failed and row["tasks"] == (1 if failed else 0), name
        assert (row["worker_seconds"]["CPU"] > 0) == bool(failed), name
    assert judge["from_cache"] == games and judge["computed"] == judge["tasks"] == 0
    assert judge["prompt_tokens"] == 0 and judge["games_per_hour"] is None
    assert again["total"]["answers"] == {
        "from_cache": answered,
        "computed": 0,
        "failed": 6 - answered,
    }
    assert again["total"]["verdicts"] == {"from_cache": games, "computed": 0, "failed": 0}
