"""`arena ingest PATH... --out DIR`: pools of any shape -> canonical conversations."""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments


def register(sub) -> None:
    p = sub.add_parser("ingest", help="read instruction pools into canonical conversation rows")
    p.add_argument("paths", nargs="+", help="JSONL / JSON / Parquet files or folders of them")
    p.add_argument("--out", required=True, help="output folder (Parquet parts + _quarantine/)")
    p.add_argument(
        "--max-chars", type=int, default=200_000, help="longer conversations are quarantined"
    )
    p.add_argument("--chunk-mb", type=int, default=32, help="JSONL bytes per task")
    p.add_argument("--overwrite", action="store_true", help="replace an output of another config")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def ingest(args: argparse.Namespace, client, files, out) -> dict:
    """Run the ingest stage on `files` (already expanded by expand_inputs)."""
    from pipeline.ingest.stage import IngestConfig, IngestPools
    from pipeline.runner import run_stage

    config = IngestConfig(max_chars=args.max_chars, chunk_mb=args.chunk_mb)
    return run_stage(IngestPools(files, out, config), client, overwrite=args.overwrite)


def report(manifest: dict, out) -> str:
    lines = [
        f"ingest: {manifest['rows_in']} rows read, {manifest['rows_out']} kept, "
        f"{manifest['rows_rejected']} quarantined -> {out}"
    ]
    for reason, n in sorted(manifest["summary"]["rejected_by_reason"].items()):
        lines.append(f"  quarantined ({reason}): {n}  see {out}/_quarantine/")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from jobs.cluster import connect
    from pipeline.ingest.readers import expand_inputs

    files = expand_inputs(args.paths)  # a missing file fails before any cluster starts
    with connect(args) as client:
        manifest = ingest(args, client, files, args.out)
    print(report(manifest, args.out))
    return 0
