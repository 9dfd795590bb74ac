"""Flow: a battle run. `prepare_battle` loads and checks the roster, the judge, the
config and the schedule (every mistake a UserError, before any cluster work);
`run_battle` answers, judges and writes records, combined pairs and the summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arena_models.judge import load_template
from arena_models.roster import ModelSpec, backend_class, load_roster, make_backend, pick_model
from core.errors import UserError
from pipeline.battle.browser import BROWSER
from pipeline.battle.config import BattleConfig
from pipeline.battle.run import battle_models
from pipeline.battle.schedule import check_schedule
from pipeline.battle.summary import render


@dataclass(frozen=True)
class BattleSetup:
    """A checked battle run: who battles, who judges, how, and where answers are cached."""

    specs: list[ModelSpec]
    judge: ModelSpec
    config: BattleConfig
    cache: str | None = None  # None: OUT/_cache

    @property
    def scoring(self) -> str:
        """How the judge's scores are read: the config's choice, else the judge entry's."""
        return self.config.judge_scoring or self.judge.scoring

    @property
    def resources(self) -> dict[str, float]:
        """The largest amount of each resource any roster model or the judge needs."""
        needed: dict[str, float] = {}
        for spec in [*self.specs, self.judge]:
            for name, amount in spec.resources.items():
                needed[name] = max(amount, needed.get(name, 0))
        return needed


def prepare_battle(
    roster,
    config: BattleConfig = BattleConfig(),
    *,
    judge: str | None = None,
    judge_roster: str | None = None,
    cache: str | None = None,
) -> BattleSetup:
    """`judge`: an entry of `judge_roster` (default: the battle roster itself)."""
    specs = load_roster(roster)
    judge_spec = pick_model(judge_roster or specs, judge)
    check_schedule([s.name for s in specs], config)
    check_scoring(judge_spec, config.judge_scoring)
    load_template(config.judge_template)
    for spec in {s.name: s for s in [*specs, judge_spec]}.values():
        check = getattr(make_backend(spec), "check", None)
        if check is not None:  # files read now (recorded answers): a bad row is one line
            check()
    return BattleSetup(specs, judge_spec, config, cache)


def check_scoring(judge: ModelSpec, scoring: str | None) -> None:
    """Expected scores need a judge whose backend reads token probabilities."""
    if (scoring or judge.scoring) == "expected" and not hasattr(
        backend_class(judge.backend), "continuation_probabilities"
    ):
        raise UserError(
            f"judge {judge.name}: expected scores need token probabilities"
            f" (a vllm or transformers judge), not backend {judge.backend}"
        )


def run_battle(client, setup: BattleSetup, evalset, out, *, progress: bool = True) -> dict:
    """Battle the roster on the eval set; returns the summary (also OUT/summary.json)."""
    return battle_models(
        client,
        setup.specs,
        setup.judge,
        evalset=evalset,
        out=out,
        config=setup.config,
        cache=setup.cache,
        progress=progress,
    )


def require_verdicts(summary: dict, out) -> None:
    """A battle run in which no game has a verdict has nothing to rate: the step fails
    (a flywheel does not record it as done), its records kept to read, and a rerun judges
    the games the judge never answered again."""
    if summary["no_verdict"]:
        raise UserError(f"{summary['no_verdict']}; see {Path(out) / 'summary.md'}")


def battle_line(summary: dict, out) -> str:
    """The run in one line, for a job that logs a line per step (the report: summary.md)."""
    s, left_out = summary, summary["prompts_left_out"]
    skipped = (
        f", {left_out['prompts']} of {left_out['of']} prompts left out"
        if left_out["prompts"]
        else ""
    )
    return (
        f"battles: {s['battles']} records ({s['pairs']} pairs x 2 games) on {s['prompts']}"
        f" prompts among {len(s['models'])} models{skipped}, {s['judge_errors']} judge errors,"
        f" {s['inconsistent_pairs']} pairs whose games disagree -> {Path(out) / 'summary.md'};"
        f" to read them: {Path(out) / BROWSER}"
    )


def battle_report(summary: dict, out) -> str:
    out = Path(out)
    return (
        f"{render(summary)}\nrecords: {out / 'battles'}; pairs: {out / 'combined'};"
        f" to read them: {out / BROWSER}"
    )
