"""`arena battle --roster R --evalset E --out DIR`: pairwise battles judged by an LLM.

Every pair of the schedule meets on every prompt twice (the second game with
the answers swapped); records go to DIR/battles (the BATTLE schema, readable by
`arena elo`), the combined pairs to DIR/combined, and a summary is printed.
Answers and verdicts are cached (default DIR/_cache): a rerun resumes, and a
model added to the roster costs only its own answers and new pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("battle", help="battles among roster models, judged pairwise by an LLM")
    p.add_argument("--roster", required=True, help="roster YAML (or a packaged name, e.g. demo)")
    p.add_argument("--evalset", required=True, help="folder of canonical conversation Parquet")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--limit", type=int, default=None, help="first N prompts (prompt_id order)")
    p.add_argument("--judge", default=None, help="judge model: an entry of the judge roster")
    p.add_argument(
        "--judge-roster", default=None, help="roster holding the judge (default --roster)"
    )
    p.add_argument("--judge-template", default=None, help="judge prompt template file")
    p.add_argument("--judge-retries", type=int, default=2, help="retries of unreadable verdicts")
    p.add_argument(
        "--judge-max-tokens", type=int, default=None, help="default: the judge's sampling"
    )
    p.add_argument("--max-answer-chars", type=int, default=4000, help="answer text the judge sees")
    p.add_argument(
        "--schedule", default="all-pairs", choices=["all-pairs", "target", "anchor", "sampled"]
    )
    p.add_argument("--target", default=None, help="target/sampled: the model that battles")
    p.add_argument("--opponents", default="", help="target: comma-separated (default: all others)")
    p.add_argument("--anchor", default=None, help="anchor: every model meets this one")
    p.add_argument("--k", type=int, default=1, help="sampled: opponents per model per prompt")
    p.add_argument("--seed", type=int, default=0, help="sampled: seed of the draw")
    p.add_argument(
        "--combine",
        default="total",
        choices=["total", "consistent"],
        help="total: higher summed score of both games wins; consistent: games must agree, else tie",
    )
    p.add_argument("--cache", default=None, help="answer/verdict cache (default DIR/_cache)")
    p.add_argument("--rejudge-errors", action="store_true", help="judge failed games again")
    p.add_argument("--answer-chunk", type=int, default=32, help="prompts per answer task")
    p.add_argument("--judge-chunk", type=int, default=32, help="games per judge task")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def pick_judge(specs: list, judge: str | None, judge_roster: str | None):
    """The judge's ModelSpec: `judge` from the judge roster (default: the battle roster);
    with no name, the judge roster's only entry."""
    from arena_models.roster import load_roster
    from pipeline.errors import UserError

    pool = load_roster(judge_roster) if judge_roster else specs
    where = judge_roster or "the roster"
    if judge is None:
        if judge_roster and len(pool) == 1:
            return pool[0]
        raise UserError(f"name the judge with --judge (one of {', '.join(s.name for s in pool)})")
    for spec in pool:
        if spec.name == judge:
            return spec
    raise UserError(
        f"judge {judge!r} is not in {where} (entries: {', '.join(s.name for s in pool)})"
    )


def prepare(roster_path, **options) -> dict:
    """Load and check everything a run needs before any cluster work: the roster, the
    judge, the config and the schedule. Returns run_battle's arguments."""
    from arena_models.judge import load_template
    from arena_models.roster import load_roster
    from pipeline.battle.config import BattleConfig
    from pipeline.battle.schedule import check_schedule

    judge_name = options.pop("judge", None)
    judge_roster = options.pop("judge_roster", None)
    cache = options.pop("cache", None)
    progress = options.pop("progress", True)
    specs = load_roster(roster_path)
    judge = pick_judge(specs, judge_name, judge_roster)
    config = BattleConfig(**options)
    check_schedule([s.name for s in specs], config)
    load_template(config.judge_template)
    return dict(specs=specs, judge=judge, config=config, cache=cache, progress=progress)


def run_battles(client, roster_path, evalset_dir, out_dir, **options) -> dict:
    """The battle step for the main job. `options`: judge, judge_roster, cache, progress and
    any field of pipeline.battle.config.BattleConfig. Returns the summary dict."""
    from pipeline.battle.run import run_battle

    return run_battle(client, evalset=evalset_dir, out=out_dir, **prepare(roster_path, **options))


def needed_resources(prepared: dict) -> dict[str, float]:
    """The largest amount of each resource any roster model or the judge needs."""
    needed: dict[str, float] = {}
    for spec in [*prepared["specs"], prepared["judge"]]:
        for name, amount in spec.resources.items():
            needed[name] = max(amount, needed.get(name, 0))
    return needed


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect, embedded_resources
    from pipeline.battle.summary import render

    options = dict(
        judge=args.judge,
        judge_roster=args.judge_roster,
        cache=args.cache,
        limit=args.limit,
        schedule=args.schedule,
        target=args.target,
        opponents=tuple(o.strip() for o in args.opponents.split(",") if o.strip()),
        anchor=args.anchor,
        k=args.k,
        seed=args.seed,
        combine=args.combine,
        judge_template=args.judge_template,
        judge_retries=args.judge_retries,
        judge_max_tokens=args.judge_max_tokens,
        max_answer_chars=args.max_answer_chars,
        answer_chunk=args.answer_chunk,
        judge_chunk=args.judge_chunk,
        rejudge_errors=args.rejudge_errors,
    )
    from pipeline.battle.run import run_battle

    prepared = prepare(args.roster, **options)  # mistakes surface before a cluster starts
    embedded_resources(args, needed_resources(prepared))
    with connect(args) as client:
        summary = run_battle(client, evalset=args.evalset, out=args.out, **prepared)
    print(render(summary))
    print(f"records: {Path(args.out) / 'battles'}; pairs: {Path(args.out) / 'combined'}")
    return 0
