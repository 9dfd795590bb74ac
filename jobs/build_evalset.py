"""`arena build-evalset --pool PATH... --out DIR`: WizardArena Diverse / Hard / Mix sets
(pipeline/flows/evalset.py). Every recipe key is also a flag (--clusters, --difficulty-judge,
--judge-roster, --semantic-threshold ...) that overrides the recipe."""

from __future__ import annotations

import argparse

from jobs.cluster import add_cluster_arguments, connect
from jobs.options import add_config_arguments, config_from_args

COMMAND = "build-evalset"
HELP = "build WizardArena Diverse / Hard / Mix eval sets from a pool"


def register(sub) -> None:
    from pipeline.flows.evalset import Recipe
    from pipeline.ingest.stage import IngestConfig

    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument(
        "--pool", nargs="+", required=True, help="pool files or folders (any shape ingest reads)"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", help="YAML recipe file or a packaged one (wizardarena_mix, demo)")
    add_config_arguments(p, Recipe, group=p.add_argument_group("recipe (overrides the file)"))
    add_config_arguments(p, IngestConfig, group=p.add_argument_group("ingest"))
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from jobs.outputs import check_out, claim_out
    from pipeline.flows.evalset import OUTPUTS, Recipe, build_evalset, evalset_report
    from pipeline.flows.ingest import pool_files
    from pipeline.ingest.stage import IngestConfig

    recipe = Recipe.load(args.recipe, {f.name: getattr(args, f.name) for f in fields(Recipe)})
    judge = recipe.difficulty_config().judge  # a bad judge fails before a cluster starts
    ingest_config = config_from_args(IngestConfig, args)
    files = pool_files(args.pool)
    check_out(args.out, *args.pool, writes=OUTPUTS)
    claim_out(args.out, OUTPUTS)
    with connect(args, judge.resources) as client:
        counts = build_evalset(
            client, files, args.out, recipe, ingest_config, overwrite=args.overwrite
        )
    print(evalset_report(counts, args.out))
    return 0
