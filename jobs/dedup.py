"""`arena dedup --exact IN --out DIR`: drop rows whose normalised text repeats."""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("dedup", help="deduplicate a conversation folder")
    p.add_argument("pool", help="folder written by `arena ingest`")
    p.add_argument("--out", required=True, help="output folder (kept rows + _dropped/ report)")
    p.add_argument("--exact", action="store_true", help="exact dedup on normalised text (default)")
    p.add_argument("--buckets", type=int, default=0, help="hash buckets (0: by input size)")
    p.add_argument("--overwrite", action="store_true", help="replace an output of another config")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def exact_dedup(client, pool, out, *, buckets: int = 0, overwrite: bool = False) -> dict:
    import pyarrow.parquet as pq

    from pipeline.dedup.exact import ExactDedup, ExactDedupConfig
    from pipeline.parquet_io import part_files
    from pipeline.runner import claim_output, is_complete, run_stage

    total = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(pool))
    stage = ExactDedup(pool, out, ExactDedupConfig(buckets=buckets), total_rows=total)
    claim_output(stage, overwrite)
    if not is_complete(stage):
        run_stage(stage.shuffle_stage(), client)
    manifest = run_stage(stage, client)
    stage.clean_work()
    return manifest


def report(manifest: dict, out) -> str:
    return (
        f"exact dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
        f"{manifest['summary']['dropped']} duplicates dropped -> {out} (report: {out}/_dropped/)"
    )


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect

    with connect(args) as client:
        manifest = exact_dedup(
            client, args.pool, args.out, buckets=args.buckets, overwrite=args.overwrite
        )
    print(report(manifest, args.out))
    return 0
