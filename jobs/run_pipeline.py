"""`arena run`: the main job, end to end on one cluster.

pool -> ingest -> exact dedup -> WizardArena eval set (embed, K-means, Diverse,
Hard by judged difficulty, Mix) -> battles of the roster on the Mix set, judged
pairwise in two games -> Bradley-Terry leaderboard. Each step writes its own
subfolder of --out, so a rerun resumes where the last run stopped (answers and
verdicts come from the battle caches). Flywheel shards join here as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="the main job: pool -> dedup -> eval set -> battles -> leaderboard"
    )
    p.add_argument(
        "--pool",
        nargs="+",
        default=None,
        help="pool files or folders (default: the embedded sample)",
    )
    p.add_argument("--out", default="runs/demo", help="output folder, one subfolder per step")
    p.add_argument(
        "--recipe", default="demo", help="eval-set recipe (packaged: demo, wizardarena_mix)"
    )
    p.add_argument(
        "--roster", default="demo", help="battle roster (packaged: demo, demo_transformers)"
    )
    p.add_argument("--judge-roster", default="judges", help="roster holding the judge")
    p.add_argument("--judge", default="smollm2-judge", help="judge model of the judge roster")
    p.add_argument(
        "--battle-prompts", type=int, default=50, help="Mix prompts the roster battles on (0: all)"
    )
    p.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds of the leaderboard")
    p.add_argument("--max-chars", type=int, default=200_000)
    p.add_argument("--chunk-mb", type=int, default=32)
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from eval_sets import sample_pool_files
    from jobs import dedup, ingest
    from jobs.battle import needed_resources, prepare
    from jobs.build_evalset import Recipe, build
    from jobs.cluster import connect, embedded_resources
    from jobs.elo import recompute
    from jobs.elo import report as elo_report
    from pipeline.battle.run import run_battle
    from pipeline.battle.summary import render
    from pipeline.ingest.readers import expand_inputs

    out = Path(args.out)
    recipe = Recipe.load(args.recipe, {})
    files = expand_inputs(args.pool or [str(p) for p in sample_pool_files()])
    # Roster and judge mistakes surface before any cluster work.
    battle_setup = prepare(
        args.roster,
        judge=args.judge,
        judge_roster=args.judge_roster,
        limit=args.battle_prompts or None,
    )
    embedded_resources(args, needed_resources(battle_setup))
    with connect(args) as client:
        pooled = ingest.ingest(args, client, files, out / "pool")
        print(ingest.report(pooled, out / "pool"))
        deduped = dedup.exact_dedup(client, out / "pool", out / "dedup", overwrite=args.overwrite)
        print(dedup.report(deduped, out / "dedup"))
        counts = build(client, out / "dedup", out / "evalset", recipe, overwrite=args.overwrite)
        print(
            f"eval set: diverse {counts['diverse']} rows from {counts['diverse_clusters']} clusters, "
            f"hard {counts['hard']} of {counts['candidates']} candidates ({counts['judge_errors']} judge "
            f"errors), mix {counts['mix']} -> {out}/evalset; report {counts['report']}"
        )
        summary = run_battle(
            client, evalset=out / "evalset" / "mix", out=out / "battles", **battle_setup
        )
        print(render(summary))
        board = recompute(
            client, [out / "battles" / "battles"], out / "leaderboard", bootstrap=args.bootstrap
        )
        print(elo_report(board, out / "leaderboard"))
    return 0
