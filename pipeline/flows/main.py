"""Flow: `arena run`, the main job, end to end on one cluster.

pool -> ingest -> exact dedup -> WizardArena eval set (embed, K-means, Diverse,
Hard by judged difficulty, Mix) -> battles of the roster on the Mix set, judged
pairwise in two games -> the battle judge measured against people on labelled
answer pairs -> Bradley-Terry leaderboard -> a first flywheel iteration (the pool
decontaminated against the eval sets, sliced; the target trained on the battles it
loses and re-rated beside itself) -> OUT/report.md, which puts the leaderboard
beside how far its judge agrees with people, what the flywheel made and what the battles
and the flywheel cost. Each step writes its own subfolder of OUT, so a rerun resumes
where the last run stopped (answers and verdicts come from the battle caches,
judge-eval games from its own).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.roster import ModelSpec
from core.defaults import JUDGE, JUDGE_ROSTER
from core.errors import UserError
from core.parquet_io import write_text_atomic
from eval_sets import LABELLED_PAIRS, sample_pool_files
from pipeline.battle.browser import BROWSER, write_browser
from pipeline.battle.config import BattleConfig
from pipeline.battle.cost import add_costs, cost_section, relabel
from pipeline.flows.battle import (
    BattleSetup,
    battle_line,
    battle_report,
    prepare_battle,
    require_verdicts,
    run_battle,
)
from pipeline.flows.dedup import dedup_report, run_exact_dedup
from pipeline.flows.evalset import Recipe, build_from_deduped, evalset_report
from pipeline.flows.flywheel import FlywheelSetup, check_inputs, prepare_flywheel, run_flywheel
from pipeline.flows.ingest import ingest, ingest_report, pool_files
from pipeline.flows.judge_eval import (
    JudgeEvalConfig,
    JudgeEvalSetup,
    agreement_line,
    prepare_judge_eval,
    run_judge_eval,
)
from pipeline.flows.ratings import RatingsConfig, rate_battles, ratings_report
from pipeline.flywheel.config import FlywheelConfig
from pipeline.flywheel.cost import iteration_cost
from pipeline.ingest.stage import IngestConfig
from pipeline.ratings.groups import WHOLE, side_by_side_markdown
from pipeline.ratings.leaderboard import markdown_table

log = logging.getLogger(__name__)

# What the main job writes in its folder (jobs/outputs.py: nothing else may be there).
OUTPUTS = (
    *("pool", "dedup", "evalset", "battles", "judge_eval", "leaderboard", "flywheel"),
    "report.md",
)
# What the cost table of OUT/report.md covers.
COST_NOTE = (
    "What each step computed when it last ran, by stage and model (what the caches served"
    " cost nothing). Worker seconds are the tasks' own measured durations: GPU-seconds for tasks"
    " holding a GPU slot, CPU-seconds otherwise; wall seconds are the driver's clock around"
    " each stage, and the total's around each run and training. Each battle run's"
    " summary.json holds its `cost`; the eval-set build and the judge evaluation are not"
    " counted here."
)


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
    judge_roster: str = field(default=JUDGE_ROSTER, metadata={"help": "roster holding the judge"})
    judge: str = field(default=JUDGE, metadata={"help": "judge model of the judge roster"})
    battle_prompts: int = field(
        default=50,
        metadata={
            "help": "Mix prompts the roster battles on, of those every model answers (0: all)"
        },
    )
    bootstrap: int = field(default=100, metadata={"help": "bootstrap rounds of the leaderboard"})
    judge_eval_pairs: int = field(
        default=50,
        metadata={
            "help": "labelled answer pairs (LLMFAO, packaged) the battle judge is measured on"
            " against people, a stable sample of N (0: skip)"
        },
    )
    flywheel: str = field(
        default="demo",
        metadata={
            "help": "flywheel config of the first iteration run after the leaderboard"
            " (packaged: demo; a file; none: skip)"
        },
    )

    def __post_init__(self):
        if self.battle_prompts < 0 or self.judge_eval_pairs < 0 or self.bootstrap < 0:
            raise UserError("--battle-prompts, --judge-eval-pairs and --bootstrap must be >= 0")


@dataclass(frozen=True)
class MainJob:
    """The main job's inputs, loaded and checked before any cluster work."""

    files: list[Path]
    recipe: Recipe
    battle: BattleSetup
    ingest: IngestConfig
    ratings: RatingsConfig
    difficulty_judge: ModelSpec
    judge_eval: JudgeEvalSetup | None = None
    flywheel: FlywheelSetup | None = None

    @property
    def resources(self) -> dict[str, float]:
        """What the embedded cluster's workers must hold: battles', the difficulty
        judge's and the flywheel's training jobs'."""
        needed = dict(self.battle.resources)
        extra = [self.difficulty_judge.resources]
        if self.flywheel:
            extra.append(self.flywheel.resources)
        for amounts in extra:
            for name, amount in amounts.items():
                needed[name] = max(amount, needed.get(name, 0))
        return needed


def prepare_main(config: MainJobConfig, ingest_config: IngestConfig = IngestConfig()) -> MainJob:
    recipe = Recipe.load(config.recipe)
    battle = prepare_battle(
        config.roster,
        BattleConfig(limit=config.battle_prompts or None),
        judge=config.judge,
        judge_roster=config.judge_roster,
    )
    files = pool_files(config.pool or sample_pool_files())
    # Every prompt of Mix carries its subset: the report shows Diverse / Hard / Mix.
    ratings = RatingsConfig(bootstrap=config.bootstrap, by="subset")
    judge = recipe.difficulty_config().judge
    judge_eval = None
    if config.judge_eval_pairs:
        settings = battle.config
        judge_eval = prepare_judge_eval(
            LABELLED_PAIRS,
            JudgeEvalConfig(
                judge_roster=config.judge_roster,
                judge=config.judge,
                judge_template=settings.judge_template,
                judge_retries=settings.judge_retries,
                judge_max_tokens=settings.judge_max_tokens,
                max_answer_chars=settings.max_answer_chars,
                expected_scores=battle.scoring == "expected",
                limit=config.judge_eval_pairs,
            ),
        )
    flywheel = None
    if config.flywheel != "none":
        # The main job supplies the arena; the file says who is trained and how much.
        # Its folders (pool, eval sets) are made by the job's own steps: checked then.
        arena = {"roster": config.roster, "judge_roster": config.judge_roster,
                 "judge": config.judge, "bootstrap": config.bootstrap}  # fmt: skip
        flywheel = prepare_flywheel(
            FlywheelConfig.load(config.flywheel, arena), None, 1, check_paths=False
        )
    return MainJob(files, recipe, battle, ingest_config, ratings, judge, judge_eval, flywheel)


def main_flywheel(setup: FlywheelSetup, out: Path) -> FlywheelSetup:
    """The flywheel on this run's folders: the deduplicated pool decontaminated against
    every eval set built, re-rated on Mix, sharing the battle caches."""
    evalsets = [out / "evalset" / name for name in ("mix", "diverse", "hard")]
    config = dataclasses.replace(
        setup.config,
        pool=str(out / "dedup"),
        decontaminate_against=tuple(str(p) for p in evalsets if p.is_dir()),
        evalset=str(out / "evalset" / "mix"),
        cache=str(out / "battles" / "_cache"),
    )
    check_inputs(config, out / "flywheel", 1)
    return dataclasses.replace(setup, config=config)


def run_main(client, job: MainJob, out, *, overwrite: bool = False) -> dict:
    """Every step in turn, each step's report logged; returns the leaderboard summary."""
    out = Path(out)
    pooled = ingest(client, job.files, out / "pool", job.ingest, overwrite=overwrite)
    log.info(ingest_report(pooled, out / "pool"))
    deduped = run_exact_dedup(client, out / "pool", out / "dedup", overwrite=overwrite)
    log.info(dedup_report(deduped, out / "dedup"))
    counts = build_from_deduped(
        client, out / "dedup", out / "evalset", job.recipe, overwrite=overwrite
    )
    log.info(evalset_report(counts, out / "evalset"))
    summary = run_battle(client, job.battle, out / "evalset" / "mix", out / "battles")
    log.info(battle_line(summary, out / "battles"))
    log.debug(battle_report(summary, out / "battles"))
    require_verdicts(summary, out / "battles")
    trust = None
    if job.judge_eval:
        measured = run_judge_eval(client, job.judge_eval, out / "judge_eval")
        trust = agreement_line(measured, job.battle.scoring)
        log.info("%s\nreport: %s", trust, out / "judge_eval" / "report.md")
    board = rate_battles(client, [out / "battles" / "battles"], out / "leaderboard", job.ratings)
    log.info(ratings_report(board, out / "leaderboard", whole_table=False))
    # The battle browser's leaderboard, fitted as this one is, so the two agree.
    write_browser(out / "battles", job.ratings.rating_options())
    iteration, here = None, None
    if job.flywheel:
        flywheel = main_flywheel(job.flywheel, out)
        iteration = run_flywheel(client, flywheel, out / "flywheel", overwrite=overwrite)
        here = out / "flywheel" / f"iteration-{flywheel.iteration}"
    write_main_report(out, board, summary, trust, iteration, main_cost(summary, here))
    if trust:
        log.info(trust)
    log.info("report: %s", out / "report.md")
    return board


def main_cost(battles: dict, iteration: Path | None) -> dict | None:
    """The job's cost block: its battles' (summary.json `cost`) and its flywheel
    iteration's (that folder's battle runs and trainings), each stage named by its step."""
    flywheel = relabel(iteration_cost(iteration), "flywheel") if iteration else None
    return add_costs([relabel(battles.get("cost"), "battles"), flywheel])


def write_main_report(
    out: Path,
    board: dict,
    battles: dict,
    trust: str | None,
    iteration: dict | None = None,
    cost: dict | None = None,
) -> None:
    """OUT/report.md, the page to open first: the leaderboard, how far to trust its judge,
    the ratings per eval-set subset, what battled, where to read every battle, what the
    battles and the flywheel cost, and where each step's own report is."""
    left = battles.get("prompts_left_out") or {}
    lines = [
        "# Arena run",
        "",
        f"**How far to trust this leaderboard:** {trust}." if trust else "",
        "",
        markdown_table(board["table"]).rstrip(),
        "",
        *(
            [
                "Every model shares rank 1: their 95% intervals overlap, so this judge separates"
                " none of them on these prompts.",
                "",
            ]
            if len(board["table"]) > 1 and set(board["table"]["rank"]) == {1}
            else []
        ),
        f"{board['battles']} battles counted among {board['models']} models on"
        f" {battles['prompts']} prompts, judged by {battles['judge']}"
        + (
            f" ({left['prompts']} of {left['of']} eval-set prompts left out:"
            f" not every model answers them)"
            if left.get("prompts")
            else ""
        )
        + ".",
        "",
        f"Read every battle (the prompt, both answers, both games' scores and the judge's"
        f" words), with filters and search: [battles/{BROWSER}](battles/{BROWSER}).",
        "",
        *subset_lines(board),
        *(flywheel_lines(iteration) if iteration else []),
        *cost_section(cost, COST_NOTE),
        "Each step's report: [eval set](evalset/report.md), [battles](battles/summary.md),"
        " [judge evaluation](judge_eval/report.md), [leaderboard](leaderboard/leaderboard.md)"
        + (", [flywheel iteration 1](flywheel/iteration-1/report.md)" if iteration else "")
        + ".",
    ]
    write_text_atomic("\n".join(lines) + "\n", out / "report.md")


def subset_lines(board) -> list[str]:
    """The ratings of OUT/report.md per eval-set subset, side by side as in the paper."""
    groups = getattr(board, "groups", None)
    if groups is None:
        return []
    labels = {value: value.capitalize() for value in groups.groups} | {WHOLE: "Mix"}
    return [
        "## Ratings by eval-set subset",
        "",
        "WizardArena-Diverse, -Hard and -Mix as the paper reports them: each column rates only"
        " its prompts' battles (a Mix prompt in both sets counts in each), with its 95%"
        " interval; [leaderboard/by/subset/](leaderboard/by/subset) has each in full.",
        "",
        side_by_side_markdown(groups, labels).rstrip(),
        "",
        *(f"- {w}" for w in groups.warnings),
        *([""] if groups.warnings else []),
    ]


def flywheel_lines(it: dict) -> list[str]:
    """The flywheel's paragraph of OUT/report.md: data made, rows trained, ratings."""
    steps = it["steps"]
    rated = steps.get("rate", {}).get("line", "not re-rated")
    made = [
        f"{kind.upper()} {steps[f'{kind}.select']['rows']} rows selected,"
        f" {steps.get(f'{kind}.train', {}).get('trained_rows', 0)} trained"
        for kind in ("sft", "dpo", "reward")
        if f"{kind}.select" in steps
    ]
    return [
        "## Flywheel, iteration 1",
        "",
        f"{it['start_model']['name']} battled {', '.join(it['opponents'])} on training-pool"
        f" slices {', '.join(f'D{k}' for k in it['slices'].values())}: {'; '.join(made)}."
        f" {rated[:1].upper()}{rated[1:]}.",
        "",
    ]
