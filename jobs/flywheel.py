"""`arena flywheel --config FILE [--iteration N] --out DIR`: one iteration of the data
flywheel (pipeline/flows/flywheel.py): battle -> select -> shard -> train -> re-rate.
`arena flywheel status --out DIR` prints what OUT/flywheel.json records.
"""

from __future__ import annotations

import argparse

from core.errors import UserError
from jobs.cluster import add_cluster_arguments, connect

COMMAND = "flywheel"
HELP = "one flywheel iteration: battle, select trl data, train, re-rate (or: status)"


def register(sub) -> None:
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument(
        "action", nargs="?", default="run", choices=("run", "status"),
        help="run an iteration (default) or print the state of --out",
    )  # fmt: skip
    p.add_argument(
        "--config",
        help="flywheel config YAML (or a packaged name: demo, paper); see"
        " pipeline/flywheel/configs/paper.yaml for every key",
    )
    p.add_argument(
        "--iteration", type=int, default=None, help="iteration to run (default: the next one)"
    )
    p.add_argument("--out", default="runs/flywheel", help="output folder (default: runs/flywheel)")
    p.add_argument("--overwrite", action="store_true", help="start OUT's state afresh")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.flywheel.state import FlywheelState, render_status

    if args.action == "status":
        print(render_status(FlywheelState.load(args.out), args.out))
        return 0
    if not args.config:
        raise UserError("arena flywheel needs --config FILE (or a packaged name: demo, paper)")
    from jobs.outputs import check_out, claim_out
    from pipeline.flows.flywheel import OUTPUTS, prepare_flywheel, run_flywheel
    from pipeline.flywheel.config import FlywheelConfig

    check_out(args.out, writes=OUTPUTS)
    # Roster, judge, checkpoints, pool and thresholds are checked before a cluster starts.
    setup = prepare_flywheel(
        FlywheelConfig.load(args.config), args.out, args.iteration, overwrite=args.overwrite
    )
    claim_out(args.out, OUTPUTS)
    with connect(args, setup.resources) as client:
        run_flywheel(client, setup, args.out, overwrite=args.overwrite)
    return 0
