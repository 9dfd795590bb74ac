"""`arena train KIND --data DIR --base PATH --out DIR`: one trl training job on one shard.

KIND is sft, dpo, reward or rl (GRPO scored by --reward-model, a folder `arena train
reward` wrote). DIR gets a model folder that vLLM and transformers load, with
_training.json (rows selected, trained and truncated, tokens/s, the loss per step); a
rerun of a finished job returns at once (pipeline/flywheel/training.py). The job runs as
one Dask task holding --resources (GPU=1).
"""

from __future__ import annotations

import argparse

from core.errors import UserError
from core.submit import run_tasks
from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "train"
HELP = "train a model on a flywheel shard (SFT, DPO, reward model, GRPO)"
SETTINGS = (
    "max_steps",
    "per_device_batch_size",
    "gradient_accumulation",
    "learning_rate",
    "beta",
    "max_length",
    "rl_num_generations",
    "rl_max_completion_length",
    "seed",
    "device",
    "resources",
)
# Flags one kind reads: given to another, they would be ignored without a word.
ONLY_FOR = {
    "beta": "dpo",
    "reward_model": "rl",
    "rl_num_generations": "rl",
    "rl_max_completion_length": "rl",
}


def register(sub) -> None:
    from pipeline.flywheel.training import KINDS, TrainConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("kind", choices=KINDS, help="what to train")
    p.add_argument("--data", required=True, help="shard folder (part-*.parquet in trl's columns)")
    p.add_argument("--base", required=True, help="base checkpoint folder (or builtin:NAME)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--reward-model", default=None, help="rl: the reward model folder")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a model trained with another config"
    )
    add_config_arguments(p, TrainConfig, only=SETTINGS, group=p.add_argument_group("training"))
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.flywheel.training import (
        TrainConfig,
        TrainJob,
        check_job,
        train_task,
        training_report,
    )

    for name, kind in ONLY_FOR.items():
        if getattr(args, name) is not None and args.kind != kind:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} applies to `arena train {kind}`, not {args.kind}")
    job = TrainJob(
        config=config_from_args(TrainConfig, args, only=SETTINGS, kind=args.kind),
        data=args.data,
        base=args.base,
        out=args.out,
        reward_model=args.reward_model,
        overwrite=args.overwrite,
    )
    check_job(job)  # shard, checkpoints and output folder before a cluster starts
    with connect(args, job.resources) as client:
        [record] = run_tasks(
            client, train_task, [(job,)], desc=f"train {args.kind}", resources=job.resources
        )
    print(training_report(record))
    return 0
