"""`arena run`: the main job, end to end on one cluster.

pool -> ingest -> exact dedup -> WizardArena eval set (embed, K-means, Diverse,
Hard by judged difficulty, Mix). Each step writes its own subfolder of --out,
so a rerun resumes where the last run stopped. Battles, ratings and flywheel
shards join here as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("run", help="the main job: pool -> dedup -> eval set (and every later step)")
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
    p.add_argument("--max-chars", type=int, default=200_000)
    p.add_argument("--chunk-mb", type=int, default=32)
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from eval_sets import sample_pool_files
    from jobs import dedup, ingest
    from jobs.build_evalset import Recipe, build
    from jobs.cluster import connect
    from pipeline.ingest.readers import expand_inputs

    out = Path(args.out)
    recipe = Recipe.load(args.recipe, {})
    files = expand_inputs(args.pool or [str(p) for p in sample_pool_files()])
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
    return 0
