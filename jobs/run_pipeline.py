"""`arena run`: the main job, end to end on one cluster.

Today: ingest -> exact dedup. Each later step (eval set, battles, ratings,
flywheel shards) appends itself to STEPS and writes into its own subfolder of
--out, so a rerun resumes where the last run stopped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("run", help="the main job: pool -> dedup (and every later step)")
    p.add_argument(
        "--pool", nargs="+", default=None, help="pool files or folders (default: the embedded sample)"
    )
    p.add_argument("--out", default="runs/demo", help="output folder, one subfolder per step")
    p.add_argument("--max-chars", type=int, default=200_000)
    p.add_argument("--chunk-mb", type=int, default=32)
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from eval_sets import sample_pool_files
    from jobs import dedup, ingest
    from jobs.cluster import connect

    from pipeline.ingest.readers import expand_inputs

    out = Path(args.out)
    files = expand_inputs(args.pool or [str(p) for p in sample_pool_files()])
    with connect(args) as client:
        pooled = ingest.ingest(args, client, files, out / "pool")
        print(ingest.report(pooled, out / "pool"))
        deduped = dedup.exact_dedup(client, out / "pool", out / "dedup", overwrite=args.overwrite)
        print(dedup.report(deduped, out / "dedup"))
    return 0
