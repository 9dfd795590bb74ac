"""`arena`: one subcommand per job. Job modules import heavy libraries lazily,
so `arena --help` starts fast."""

from __future__ import annotations

import argparse
import importlib
import sys

# (subcommand module, in the order shown by --help)
JOBS = (
    "jobs.run_pipeline",
    "jobs.ingest",
    "jobs.dedup",
    "jobs.build_evalset",
    "jobs.decontaminate",
    "jobs.elo",
    "jobs.battle",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arena",
        description="Arena Learning on Dask: eval sets, battles, ratings and the data flywheel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in JOBS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.errors import UserError

    try:
        return args.run(args) or 0
    except UserError as exc:
        print(f"arena {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"arena {args.command}: interrupted; rerun the same command to resume", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
