"""Flows: exact dedup (a map stage into hash buckets, then a reduce stage per bucket) and
near dedup (MinHash signatures on the workers, clusters in the driver, kept rows per part)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from core.parquet_io import part_files
from core.runner import claim_output, is_complete, run_stage
from pipeline.dedup.exact import ExactDedup, ExactDedupConfig
from pipeline.dedup.near import NearDedup, NearDedupConfig, check_pool


def run_exact_dedup(
    client, pool, out, config: ExactDedupConfig = ExactDedupConfig(), *, overwrite=False
) -> dict:
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(pool))
    return run_stage(ExactDedup(pool, out, config, total_rows=total), client, overwrite=overwrite)


def run_near_dedup(
    client, pool, out, config: NearDedupConfig = NearDedupConfig(), *, overwrite=False
) -> dict:
    check_pool(Path(pool))
    stage = NearDedup(pool, out, config)
    claim_output(stage, overwrite)
    if not is_complete(stage) and not stage.clusters_file.exists():
        run_stage(stage.signature_stage(), client)
        stage.find_clusters()
    manifest = run_stage(stage, client)
    stage.clean_work()
    return manifest


def dedup_report(manifest: dict, out) -> str:
    summary = manifest["summary"]
    if manifest["stage"] == "near-dedup":
        return (
            f"near dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
            f"{summary['dropped']} near-duplicates dropped from {summary['clusters']} clusters "
            f"(Jaccard >= {summary['threshold']}) -> {out} (clusters: {out}/_clusters/)"
        )
    return (
        f"exact dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
        f"{summary['dropped']} duplicates dropped -> {out} (report: {out}/_dropped/)"
    )
