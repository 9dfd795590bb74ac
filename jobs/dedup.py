"""`arena dedup --exact IN --out DIR`: drop rows whose normalised text repeats.
`arena dedup --near IN --out DIR`: drop near-duplicates (MinHash LSH), clusters in DIR/_clusters/."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments
from jobs.options import add_config_arguments

COMMAND = "dedup"
HELP = "deduplicate a conversation folder"


def register(sub) -> None:
    from pipeline.dedup.exact import ExactDedupConfig
    from pipeline.dedup.near import NearDedupConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("pool", help="folder written by `arena ingest`")
    p.add_argument(
        "--out", required=True, help="output folder (kept rows + _dropped/ or _clusters/ report)"
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--exact", action="store_true", help="exact dedup on normalised text (default)"
    )
    how.add_argument(
        "--near", action="store_true", help="near dedup: MinHash LSH on word 3-grams of user turns"
    )
    add_config_arguments(
        p, ExactDedupConfig, only=("buckets",), group=p.add_argument_group("exact")
    )
    add_config_arguments(
        p, NearDedupConfig, only=("threshold", "num_perm"), group=p.add_argument_group("near")
    )
    p.add_argument("--overwrite", action="store_true", help="replace an output of another config")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.errors import UserError
    from core.parquet_io import require_rows
    from jobs.cluster import connect
    from jobs.options import config_from_args
    from jobs.outputs import check_out
    from pipeline.dedup.exact import ExactDedupConfig
    from pipeline.dedup.near import NearDedupConfig, check_pool
    from pipeline.flows.dedup import dedup_report, run_exact_dedup, run_near_dedup

    require_rows(args.pool, check_pool(Path(args.pool)))  # before a cluster starts
    check_out(args.out, args.pool)
    if args.near:
        if args.buckets is not None:
            raise UserError("--buckets is for --exact; --near takes --threshold and --num-perm")
        config, flow = config_from_args(NearDedupConfig, args), run_near_dedup
    else:
        if args.threshold is not None or args.num_perm is not None:
            raise UserError("--threshold and --num-perm are for --near")
        config, flow = config_from_args(ExactDedupConfig, args, only=("buckets",)), run_exact_dedup
    with connect(args) as client:
        manifest = flow(client, args.pool, args.out, config, overwrite=args.overwrite)
    print(dedup_report(manifest, args.out))
    return 0
