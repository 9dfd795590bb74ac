"""Flow: `arena run`, the main job, end to end on one cluster.

pool -> ingest -> exact dedup -> WizardArena eval set (embed, K-means, Diverse,
Hard by judged difficulty, Mix) -> battles of the roster on the Mix set, judged
pairwise in two games -> Bradley-Terry leaderboard. Each step writes its own
subfolder of OUT, so a rerun resumes where the last run stopped (answers and
verdicts come from the battle caches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.roster import ModelSpec
from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import BattleSetup, battle_report, prepare_battle, run_battles
from pipeline.flows.dedup import dedup_report, run_exact_dedup
from pipeline.flows.evalset import Recipe, build_from_deduped, evalset_report
from pipeline.flows.ingest import ingest, ingest_report, pool_files
from pipeline.flows.ratings import RatingsConfig, rate_battles, ratings_report
from pipeline.ingest.stage import IngestConfig


@dataclass(frozen=True)
class MainJobConfig:
    pool: tuple[str, ...] = field(
        default=(),
        metadata={"help": "pool files or folders (default: the embedded sample)", "nargs": "+"},
    )
    recipe: str = field(
        default="demo", metadata={"help": "eval-set recipe (packaged: demo, wizardarena_mix)"}
    )
    roster: str = field(
        default="demo", metadata={"help": "battle roster (packaged: demo, demo_transformers)"}
    )
    judge_roster: str = field(default="judges", metadata={"help": "roster holding the judge"})
    judge: str = field(
        default="smollm2-judge", metadata={"help": "judge model of the judge roster"}
    )
    battle_prompts: int = field(
        default=50, metadata={"help": "Mix prompts the roster battles on (0: all)"}
    )
    bootstrap: int = field(default=100, metadata={"help": "bootstrap rounds of the leaderboard"})


@dataclass(frozen=True)
class MainJob:
    """The main job's inputs, loaded and checked before any cluster work."""

    files: list[Path]
    recipe: Recipe
    battle: BattleSetup
    ingest: IngestConfig
    ratings: RatingsConfig
    difficulty_judge: ModelSpec

    @property
    def resources(self) -> dict[str, float]:
        """What the embedded cluster's workers must hold: battles' and difficulty judge's."""
        needed = dict(self.battle.resources)
        for name, amount in self.difficulty_judge.resources.items():
            needed[name] = max(amount, needed.get(name, 0))
        return needed


def prepare_main(config: MainJobConfig, ingest_config: IngestConfig = IngestConfig()) -> MainJob:
    from eval_sets import sample_pool_files

    recipe = Recipe.load(config.recipe)
    battle = prepare_battle(
        config.roster,
        BattleConfig(limit=config.battle_prompts or None),
        judge=config.judge,
        judge_roster=config.judge_roster,
    )
    files = pool_files(config.pool or sample_pool_files())
    ratings = RatingsConfig(bootstrap=config.bootstrap)
    judge = recipe.difficulty_config().judge
    return MainJob(files, recipe, battle, ingest_config, ratings, judge)


def run_main(
    client, job: MainJob, out, *, overwrite: bool = False, say: Callable[[str], None] = print
) -> dict:
    """Every step in turn, each step's report passed to `say`; returns the leaderboard summary."""
    out = Path(out)
    pooled = ingest(client, job.files, out / "pool", job.ingest, overwrite=overwrite)
    say(ingest_report(pooled, out / "pool"))
    deduped = run_exact_dedup(client, out / "pool", out / "dedup", overwrite=overwrite)
    say(dedup_report(deduped, out / "dedup"))
    counts = build_from_deduped(
        client, out / "dedup", out / "evalset", job.recipe, overwrite=overwrite
    )
    say(evalset_report(counts, out / "evalset"))
    summary = run_battles(client, job.battle, out / "evalset" / "mix", out / "battles")
    say(battle_report(summary, out / "battles"))
    board = rate_battles(client, [out / "battles" / "battles"], out / "leaderboard", job.ratings)
    say(ratings_report(board, out / "leaderboard"))
    return board
