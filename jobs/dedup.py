"""`arena dedup --exact IN --out DIR`: drop rows whose normalised text repeats.
`arena dedup --near IN --out DIR`: drop near-duplicates (MinHash LSH), clusters in DIR/_clusters/."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("dedup", help="deduplicate a conversation folder")
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
    p.add_argument("--buckets", type=int, default=0, help="exact: hash buckets (0: by input size)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="near: estimated Jaccard that makes a duplicate",
    )
    p.add_argument("--num-perm", type=int, default=128, help="near: MinHash permutations")
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


def near_dedup(
    client, pool, out, *, threshold: float = 0.8, num_perm: int = 128, overwrite: bool = False
) -> dict:
    """MinHash signatures per part on the workers, clusters in the driver, kept rows per part."""
    from pipeline.dedup.near import NearDedup, NearDedupConfig, check_pool
    from pipeline.runner import claim_output, is_complete, run_stage

    config = NearDedupConfig(threshold=threshold, num_perm=num_perm)
    check_pool(Path(pool))
    stage = NearDedup(pool, out, config)
    claim_output(stage, overwrite)
    if not is_complete(stage) and not stage.clusters_file.exists():
        run_stage(stage.signature_stage(), client)
        stage.find_clusters()
    manifest = run_stage(stage, client)
    stage.clean_work()
    return manifest


def report(manifest: dict, out) -> str:
    if manifest["stage"] == "near-dedup":
        summary = manifest["summary"]
        return (
            f"near dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
            f"{summary['dropped']} near-duplicates dropped from {summary['clusters']} clusters "
            f"(Jaccard >= {summary['threshold']}) -> {out} (clusters: {out}/_clusters/)"
        )
    return (
        f"exact dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
        f"{manifest['summary']['dropped']} duplicates dropped -> {out} (report: {out}/_dropped/)"
    )


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect

    if args.near:
        from pipeline.dedup.near import NearDedupConfig, check_pool
        from pipeline.errors import UserError

        if args.buckets:
            raise UserError("--buckets is for --exact; --near takes --threshold and --num-perm")
        NearDedupConfig(threshold=args.threshold, num_perm=args.num_perm)  # checks the values
        check_pool(Path(args.pool))  # a bad input fails before a cluster starts
        with connect(args) as client:
            manifest = near_dedup(
                client,
                args.pool,
                args.out,
                threshold=args.threshold,
                num_perm=args.num_perm,
                overwrite=args.overwrite,
            )
    else:
        with connect(args) as client:
            manifest = exact_dedup(
                client, args.pool, args.out, buckets=args.buckets, overwrite=args.overwrite
            )
    print(report(manifest, args.out))
    return 0
