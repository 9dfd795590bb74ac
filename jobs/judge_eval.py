"""`arena judge-eval PAIRS --out DIR`: how well a judge agrees with people.

The judge (any entry of --judge-roster) plays both orders of every labelled pair;
DIR gets report.md, judge_eval.json, verdicts.parquet and agreement.png, and the
judged games are cached in DIR/_games, so a rerun resumes (pipeline/flows/judge_eval.py).
"""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "judge-eval"
HELP = "a judge's agreement with people on labelled answer pairs"


def register(sub) -> None:
    from pipeline.flows.judge_eval import JudgeEvalConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument(
        "pairs",
        help="JSONL of labelled pairs (pair_id, prompt, answer_x, answer_y, crowd_votes;"
        " e.g. the packaged eval_sets/judging/llmfao_pairs_dev.jsonl)",
    )
    p.add_argument("--out", required=True, help="output folder")
    add_config_arguments(p, JudgeEvalConfig, group=p.add_argument_group("judge evaluation"))
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jobs.outputs import check_out, claim_out
    from pipeline.flows.judge_eval import (
        JudgeEvalConfig,
        judge_eval_report,
        prepare_judge_eval,
        run_judge_eval,
    )
    from pipeline.judge_eval.report import OUTPUTS

    # The judge, the pairs and recorded files are checked before a cluster starts.
    check_out(args.out, args.pairs, writes=OUTPUTS)
    setup = prepare_judge_eval(args.pairs, config_from_args(JudgeEvalConfig, args))
    claim_out(args.out, OUTPUTS)
    with connect(args, setup.resources) as client:
        result = run_judge_eval(client, setup, args.out)
    print(judge_eval_report(result, args.out))
    return 0
