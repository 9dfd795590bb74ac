"""Flows: exact dedup (a map stage into hash buckets, then a reduce stage per bucket) and
near dedup (signatures and band-key buckets, verified pairs per bucket, clusters, kept rows
per part: all on the workers, as NearDedup's work stages) and semantic dedup (embeddings
compared within K-means clusters, or against every earlier kept row: SemanticDedup's work
stages)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from core.parquet_io import part_files
from core.runner import run_stage
from pipeline.dedup.exact import ExactDedup, ExactDedupConfig
from pipeline.dedup.near import NearDedup, NearDedupConfig
from pipeline.dedup.semantic import SemanticDedup, SemanticDedupConfig, has_vectors


def run_exact_dedup(
    client, pool, out, config: ExactDedupConfig = ExactDedupConfig(), *, overwrite=False
) -> dict:
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(pool))
    return run_stage(ExactDedup(pool, out, config, total_rows=total), client, overwrite=overwrite)


def run_near_dedup(
    client, pool, out, config: NearDedupConfig = NearDedupConfig(), *, overwrite=False
) -> dict:
    return run_stage(NearDedup(pool, out, config), client, overwrite=overwrite)


def run_semantic_dedup(
    client, pool, out, config: SemanticDedupConfig = SemanticDedupConfig(), *, overwrite=False
) -> dict:
    """Semantic dedup of a folder with vectors, or of conversations, embedded first."""
    stage = SemanticDedup(pool, out, config, embed_first=not has_vectors(Path(pool)))
    return run_stage(stage, client, overwrite=overwrite)


def dedup_report(manifest: dict, out) -> str:
    summary = manifest["summary"]
    if manifest["stage"] == "semantic-dedup":
        how = (
            f"within {summary['clusters']} K-means cluster{'s' * (summary['clusters'] != 1)}"
            if summary["search"] == "clusters"
            else f"against every earlier kept row ({summary['search']})"
        )
        return (
            f"semantic dedup: {manifest['rows_in']} rows in, {manifest['rows_out']} kept, "
            f"{summary['dropped']} dropped at cosine >= {summary['threshold']} {how} -> {out} "
            f"(report: {out}/_dropped/)"
        )
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
