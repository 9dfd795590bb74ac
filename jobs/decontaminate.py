"""`arena decontaminate --train POOL --against SETS... --out DIR`: drop the training rows
nearest to every benchmark item (top-k by embedding, paper k = 5; optional threshold)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "decontaminate"
HELP = "remove training rows that are near benchmark items"


def register(sub) -> None:
    from pipeline.evalset.decontaminate import DecontaminationConfig
    from pipeline.evalset.embed import EmbedConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument(
        "--train", required=True, help="training pool: a conversation folder (arena ingest/dedup)"
    )
    p.add_argument(
        "--against",
        nargs="+",
        required=True,
        help="benchmark sets: conversation folders (e.g. an eval set's mix/) or pool files",
    )
    p.add_argument("--out", required=True, help="kept rows; _removed/ reports every removed row")
    add_config_arguments(p, DecontaminationConfig)
    add_config_arguments(p, EmbedConfig, only=("model", "dtype"), prefix="embed_")
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.parquet_io import check_parts, require_rows
    from jobs.outputs import check_out
    from pipeline.evalset.decontaminate import DecontaminationConfig
    from pipeline.evalset.embed import EmbedConfig
    from pipeline.flows.decontaminate import check_against, decontaminate, decontaminate_report

    config = config_from_args(DecontaminationConfig, args)
    embed = config_from_args(EmbedConfig, args, only=("model", "dtype"), prefix="embed_")
    # bad inputs fail before a cluster starts
    require_rows(args.train, check_parts(Path(args.train), ("prompt_id", "messages")))
    check_against(args.against)
    check_out(args.out, args.train, *args.against)
    with connect(args) as client:
        manifest = decontaminate(
            client,
            Path(args.train),
            args.against,
            Path(args.out),
            config,
            embed,
            overwrite=args.overwrite,
        )
    print(decontaminate_report(manifest, args.out))
    return 0
