"""`arena battle --roster R --evalset E --out DIR`: pairwise battles judged by an LLM.

Every pair of the schedule meets on every prompt twice (the second game with
the answers swapped); records go to DIR/battles (the BATTLE schema and the prompt's
eval-set subset and cluster, readable by `arena elo`), the combined pairs to
DIR/combined, every battle to read in DIR/browser.html, and a summary is printed.
Answers and verdicts are cached (default DIR/_cache): a rerun resumes, and a
model added to the roster costs only its own answers and new pairs.
A run in which no game got a verdict exits 1 with the reason (records are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "battle"
HELP = "battles among roster models, judged pairwise by an LLM"


def register(sub) -> None:
    from pipeline.battle.config import BattleConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--roster", required=True, help="roster YAML (or a packaged name, e.g. demo)")
    p.add_argument("--evalset", required=True, help="folder of canonical conversation Parquet")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--judge", default=None, help="judge model: an entry of the judge roster")
    p.add_argument(
        "--judge-roster", default=None, help="roster holding the judge (default --roster)"
    )
    p.add_argument("--cache", default=None, help="answer/verdict cache (default DIR/_cache)")
    add_config_arguments(p, BattleConfig, group=p.add_argument_group("battle"))
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.parquet_io import check_parts, require_rows
    from jobs.outputs import check_cache_folder, check_out, claim_out
    from pipeline.battle.config import BattleConfig
    from pipeline.battle.run import OUTPUTS
    from pipeline.flows.battle import battle_report, prepare_battle, run_battle

    setup = prepare_battle(  # mistakes surface before a cluster starts
        args.roster,
        config_from_args(BattleConfig, args),
        judge=args.judge,
        judge_roster=args.judge_roster,
        cache=args.cache,
    )
    # a missing or empty eval set fails before a cluster starts
    require_rows(args.evalset, check_parts(Path(args.evalset), ("prompt_id", "messages")))
    check_out(args.out, args.evalset, writes=OUTPUTS)
    check_cache_folder(args.cache)
    claim_out(args.out, OUTPUTS)
    with connect(args, setup.resources) as client:
        summary = run_battle(client, setup, args.evalset, args.out)
    print(battle_report(summary, args.out))
    if summary["no_verdict"]:  # records stay written for inspection; the run has failed
        print(f"arena battle: {summary['no_verdict']}", file=sys.stderr)
        return 1
    return 0
