"""`arena run`: the main job, end to end on one cluster (pipeline/flows/main.py).

pool -> ingest -> exact dedup -> WizardArena eval set -> battles of the roster on
the Mix set, judged pairwise in two games -> Bradley-Terry leaderboard, and per eval-set
subset (Diverse / Hard / Mix) -> a first flywheel iteration; each step a resumable
subfolder of --out. --out/report.md links battles/browser.html, every battle to read.
"""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "run"
HELP = "the main job: pool -> dedup -> eval set -> battles -> leaderboard"


def register(sub) -> None:
    from pipeline.flows.main import MainJobConfig
    from pipeline.ingest.stage import IngestConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--out", default="runs/demo", help="output folder, one subfolder per step")
    add_config_arguments(p, MainJobConfig)
    add_config_arguments(p, IngestConfig, group=p.add_argument_group("ingest"))
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jobs.outputs import check_out, claim_out
    from pipeline.flows.main import OUTPUTS, MainJobConfig, prepare_main, run_main
    from pipeline.ingest.stage import IngestConfig

    # Roster, judge, recipe and pool mistakes surface before any cluster work.
    job = prepare_main(config_from_args(MainJobConfig, args), config_from_args(IngestConfig, args))
    check_out(args.out, writes=OUTPUTS)
    claim_out(args.out, OUTPUTS)
    with connect(args, job.resources) as client:
        run_main(client, job, args.out, overwrite=args.overwrite)
    return 0
