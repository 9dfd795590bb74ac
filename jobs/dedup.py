"""`arena dedup --exact IN --out DIR`: drop rows whose normalised text repeats.
`arena dedup --near IN --out DIR`: drop near-duplicates (MinHash LSH), clusters in DIR/_clusters/.
`arena dedup --semantic IN --out DIR`: drop rows whose embedding is too close to an earlier
kept row's (IN is embedded on the workers first when it has no vectors); DIR/_dropped/."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import UserError
from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "dedup"
HELP = "deduplicate a conversation folder"
# --threshold is near's flag too: one flag, read by the chosen mode's config.
SEMANTIC_FLAGS = (
    *("margin", "search", "nprobe", "clusters", "rows_per_cluster", "assign", "boundary_reach"),
    *("block_rows", "rows_per_bucket"),
)


def register(sub) -> None:
    from pipeline.dedup.exact import ExactDedupConfig
    from pipeline.dedup.near import NearDedupConfig
    from pipeline.dedup.semantic import SemanticDedupConfig
    from pipeline.evalset.embed import EmbedConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("pool", help="folder written by `arena ingest`")
    p.add_argument(
        "--out", required=True, help="output folder (kept rows + _dropped/ or _clusters/ report)"
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--exact", action="store_true", help="exact dedup on normalised text (default)"
    )
    how.add_argument(
        "--near",
        action="store_true",
        help="near dedup: MinHash LSH on word n-grams (--ngram) of user turns",
    )
    how.add_argument(
        "--semantic",
        action="store_true",
        help="semantic dedup: cosine of sentence embeddings, within K-means clusters on the "
        "workers (SemDeDup) or against every earlier row (--search exact)",
    )
    add_config_arguments(
        p, ExactDedupConfig, only=("buckets",), group=p.add_argument_group("exact")
    )
    add_config_arguments(
        p,
        NearDedupConfig,
        only=("threshold", "num_perm", "ngram"),
        group=p.add_argument_group("near"),
    )
    semantic = p.add_argument_group(
        "semantic", f"--threshold is a cosine here (default: {SemanticDedupConfig.threshold})"
    )
    add_config_arguments(p, SemanticDedupConfig, only=SEMANTIC_FLAGS, group=semantic)
    add_config_arguments(p, EmbedConfig, only=("model", "dtype"), prefix="embed_", group=semantic)
    p.add_argument("--overwrite", action="store_true", help="replace an output of another config")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.parquet_io import require_rows
    from jobs.outputs import check_out
    from pipeline.dedup.exact import ExactDedupConfig
    from pipeline.dedup.near import NearDedupConfig, check_pool
    from pipeline.flows.dedup import (
        dedup_report,
        run_exact_dedup,
        run_near_dedup,
        run_semantic_dedup,
    )

    mode = "near" if args.near else "semantic" if args.semantic else "exact"
    for name in sorted(set().union(*MODE_FLAGS.values()) - set(MODE_FLAGS[mode])):
        if getattr(args, name, None) is not None:
            owners = " or ".join(f"--{m}" for m, flags in MODE_FLAGS.items() if name in flags)
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} is a flag of {owners} dedup, not of --{mode}")
    if mode == "semantic":
        config, flow = semantic_config(args), run_semantic_dedup
    else:
        require_rows(args.pool, check_pool(Path(args.pool)))  # before a cluster starts
        if mode == "near":
            config, flow = config_from_args(NearDedupConfig, args), run_near_dedup
        else:
            config = config_from_args(ExactDedupConfig, args, only=("buckets",))
            flow = run_exact_dedup
    check_out(args.out, args.pool)
    with connect(args) as client:
        manifest = flow(client, args.pool, args.out, config, overwrite=args.overwrite)
    print(dedup_report(manifest, args.out))
    return 0


MODE_FLAGS = {
    "exact": ("buckets",),
    "near": ("threshold", "num_perm", "ngram"),
    "semantic": ("threshold", *SEMANTIC_FLAGS, "embed_model", "embed_dtype"),
}


def semantic_config(args: argparse.Namespace):
    """The semantic config, its input checked (vectors, or conversations to embed) and its
    cluster count against the rows, before a cluster starts."""
    from pipeline.dedup.semantic import SemanticDedupConfig, check_semantic_input
    from pipeline.evalset.embed import EmbedConfig

    embed = config_from_args(EmbedConfig, args, only=("model", "dtype"), prefix="embed_")
    config = config_from_args(SemanticDedupConfig, args, only=("threshold", *SEMANTIC_FLAGS))
    config = SemanticDedupConfig(**{**config.__dict__, "embed": embed})
    check_semantic_input(Path(args.pool), config)
    return config
