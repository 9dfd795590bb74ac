"""`arena elo BATTLES... --out DIR [--by COLUMN]`: Bradley-Terry leaderboard with bootstrap
CIs; with --by, one more per value of COLUMN (subset: Diverse / Hard) and a side-by-side
table in DIR/by/."""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments, connect_unless_small
from jobs.options import add_config_arguments, config_from_args

COMMAND = "elo"
HELP = "rate models from battle files (ours, FastChat's, left/right votes)"


def register(sub) -> None:
    from pipeline.flows.ratings import RatingsConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument(
        "battles", nargs="+", help="Parquet / CSV / JSONL battle files or Parquet folders"
    )
    p.add_argument("--out", required=True, help="output folder for leaderboard files")
    add_config_arguments(p, RatingsConfig)
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jobs.outputs import check_out, claim_out
    from pipeline.flows.ratings import RatingsConfig, rate_battles, ratings_report
    from pipeline.ratings.battle_files import fits_one_process
    from pipeline.ratings.leaderboard import OUTPUTS

    config = config_from_args(RatingsConfig, args)
    check_out(args.out, *args.battles, writes=OUTPUTS)
    claim_out(args.out, OUTPUTS)
    with connect_unless_small(args, fits_one_process(args.battles)) as client:
        summary = rate_battles(client, args.battles, args.out, config)
    print(ratings_report(summary, args.out))
    return 0
