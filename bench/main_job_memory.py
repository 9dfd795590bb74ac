"""The README main job (`arena run`, its defaults) with the resident memory of every
process of its tree sampled each second.

    python -m bench.main_job_memory [--workers N] [--work runs/bench_main_job_memory]
                                    [-- ARGS for arena run]

Prints the peak of the whole tree and of each kind of process (driver, worker, trainer, engine),
each with the step it happened in (bench/process_memory.py), beside the targets: 8 GiB
for the tree and 4 GiB for any one process. The run's own output folder is WORK/out and
its log WORK/run.log.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from bench.job_process import REPO, start
from bench.process_memory import watch

TREE_TARGET_GIB = 8.0
PROCESS_TARGET_GIB = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="default: the job's own")
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_main_job_memory"))
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("extra", nargs="*", help="more arguments for arena run (after --)")
    opts = parser.parse_args()

    work = Path(opts.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    args = [*(["--workers", str(opts.workers)] if opts.workers else []), *opts.extra]
    began = time.monotonic()
    out, log = work / "out", work / "run.log"
    code, trace = watch(start(args, out, log), out, log, opts.interval)
    seconds = time.monotonic() - began
    print(f"arena run {' '.join(args)}: exit {code} after {seconds:.0f} s, {trace.samples} samples")
    print(trace.table())
    largest = max((p.gib for p in trace.process.values()), default=0.0)
    print(
        f"targets: tree {trace.tree.gib:.2f} of {TREE_TARGET_GIB:.0f} GiB"
        f" ({'met' if trace.tree.gib <= TREE_TARGET_GIB else 'MISSED'}),"
        f" largest process {largest:.2f} of {PROCESS_TARGET_GIB:.0f} GiB"
        f" ({'met' if largest <= PROCESS_TARGET_GIB else 'MISSED'})"
    )
    if code != 0:
        sys.exit(f"arena run failed: see {work / 'run.log'}")


if __name__ == "__main__":
    main()
