"""`arena ingest PATH... --out DIR`: pools of any shape -> canonical conversations."""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "ingest"
HELP = "read instruction pools into canonical conversation rows"


def register(sub) -> None:
    from pipeline.ingest.stage import IngestConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("paths", nargs="+", help="JSONL / JSON / Parquet files or folders of them")
    p.add_argument("--out", required=True, help="output folder (Parquet parts + _quarantine/)")
    add_config_arguments(p, IngestConfig)
    p.add_argument("--overwrite", action="store_true", help="replace an output of another config")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jobs.outputs import check_out
    from pipeline.flows.ingest import claim_ingest_output, ingest, ingest_report, pool_files
    from pipeline.ingest.stage import IngestConfig

    config = config_from_args(IngestConfig, args)
    files = pool_files(args.paths)  # a missing file fails before any cluster starts
    check_out(args.out, *args.paths)
    claim_ingest_output(files, args.out, config, overwrite=args.overwrite)
    with connect(args) as client:
        manifest = ingest(client, files, args.out, config, overwrite=args.overwrite)
    print(ingest_report(manifest, args.out))
    return 0
