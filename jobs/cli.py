"""`arena`: one subcommand per job. Only the job being run registers its options (and
imports its configs), so `arena --help` starts fast; every job imports heavy libraries
lazily."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from core.errors import UserError
from core.logs import configure

log = logging.getLogger(__name__)

# (subcommand module, in the order shown by --help)
JOBS = (
    "jobs.run_pipeline",
    "jobs.ingest",
    "jobs.dedup",
    "jobs.build_evalset",
    "jobs.decontaminate",
    "jobs.elo",
    "jobs.battle",
    "jobs.judge_eval",
    "jobs.flywheel",
    "jobs.train",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every job listed and `command`'s options (all jobs' with "*")."""
    parser = argparse.ArgumentParser(
        prog="arena",
        description="Arena Learning on Dask: eval sets, battles, ratings and the data flywheel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in JOBS:
        module = importlib.import_module(name)
        if command in (module.COMMAND, "*"):
            module.register(sub)
            add_logging_arguments(sub.choices[module.COMMAND])
        else:
            sub.add_parser(module.COMMAND, help=module.HELP)
    return parser


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Every command's -v / -q / --log-file (core/logs.py says what each shows)."""
    group = parser.add_argument_group("output")
    chosen = group.add_mutually_exclusive_group()
    chosen.add_argument(
        "-v", "--verbose", dest="log_level", action="store_const", const="verbose",
        default="default", help="debug detail, and other libraries' INFO lines",
    )  # fmt: skip
    chosen.add_argument(
        "-q", "--quiet", dest="log_level", action="store_const", const="quiet",
        help="warnings and errors only",
    )  # fmt: skip
    group.add_argument(
        "--log-file",
        metavar="PATH",
        help="append every log record at DEBUG, other libraries' and the workers' too",
    )


def environment_error(exc: OSError) -> str:
    """One line for an error of the machine rather than of the input: the path and the
    cause (a file where a folder goes, no space left), or the lost scheduler."""
    from distributed.comm.core import CommClosedError

    resume = "rerun the same command to resume"
    # distributed raises a bare OSError when the scheduler never answers a reconnect
    silent = re.match(r"Timed out trying to connect to (\S+) after ([\d.]+) s", str(exc))
    if silent:
        address, seconds = silent.group(1), float(silent.group(2))
        return f"lost the Dask scheduler at {address} (no answer for {seconds:.0f} s); {resume}"
    if isinstance(exc, CommClosedError | TimeoutError):
        return f"lost the Dask scheduler ({exc or type(exc).__name__}); {resume}"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"{exc.filename}: a file is where a folder must go"
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    first = (str(exc).splitlines() or [""])[0]  # libraries add advice lines of their own
    return f"{type(exc).__name__}: {first}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)

    try:
        configure(args.log_level, args.log_file)
        return args.run(args) or 0
    except UserError as exc:
        log.debug("traceback of the error below", exc_info=True)  # -v, --log-file
        print(f"arena {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment: a path unwritable, a disk full, a cluster lost
        log.debug("traceback of the error below", exc_info=True)
        print(f"arena {args.command}: error: {environment_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"arena {args.command}: interrupted; rerun the same command to resume", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
