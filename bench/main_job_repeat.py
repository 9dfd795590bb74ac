"""The README main job run N times into fresh output folders on embedded clusters of
other shapes: does every run succeed, and does every run write the same results?

    python -m bench.main_job_repeat [--runs 6] [--size full|small]
                                    [--work runs/bench_main_job_repeat] [-- ARGS for arena run]

`--size full` (the default) is the README's `arena run` on its defaults; `--size small`
is the main job on the small real inputs the main-job tests use (bench/small_main_job.py:
132 pool rows, 4 battle prompts, a flywheel iteration of one trl step per stage).

Run k has 1 worker when k is odd and 2 when it is even; every other 2-worker run turns
off the scheduler's task queuing (distributed.scheduler.worker-saturation inf), so tasks
go to workers as they are submitted rather than as workers free up: another order of
landing. Each run writes to WORK/out, is compared with the first (bench/job_process.py
`fingerprint`: every Parquet table's rows, manifest hashes, the leaderboard CSV and the
checkpoints' bytes), then moves to WORK/run-K; checkpoint paths are part of the answer
cache keys, so runs in two folders would differ by their path alone. The resident
memory of each run's process tree is sampled too (bench/process_memory.py).

Prints one row per run: workers, queuing, exit status, seconds, peak memory of the tree
and of its largest process, and whether the eval sets, battle records, leaderboard,
flywheel shards and everything else equal the first run's.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from bench.job_process import REPO, differing, fingerprint, start
from bench.process_memory import watch
from bench.small_main_job import small_main_job

# What the table names apart, by the start of an output's path under OUT.
GROUPS = {
    "eval sets": ("evalset/",),
    "battle records": ("battles/",),
    "leaderboard": ("leaderboard/",),
    "shards": ("flywheel/iteration-1/sft", "flywheel/iteration-1/dpo"),
}


def shape(run: int) -> tuple[int, bool]:
    """(workers, queuing) of run `run` (1-based)."""
    workers = 1 if run % 2 else 2
    return workers, not (workers == 2 and run % 4 == 0)


def verdict(diff: list[str]) -> dict[str, str]:
    """Per group: "same" or how many of its outputs differ."""
    found = {}
    for name, prefixes in GROUPS.items():
        n = sum(k.startswith(prefixes) for k in diff)
        found[name] = "same" if not n else f"{n} differ"
    others = [k for k in diff if not any(k.startswith(p) for ps in GROUPS.values() for p in ps)]
    found["everything else"] = "same" if not others else f"{len(others)} differ"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_main_job_repeat"))
    parser.add_argument("extra", nargs="*", help="more arguments for arena run (after --)")
    opts = parser.parse_args()

    work = Path(opts.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "out"
    inputs = small_main_job(work / "inputs") if opts.size == "small" else []
    reference: dict | None = None
    header = ["run", "workers", "queuing", "exit", "seconds", "tree GiB", "largest GiB"]
    rows = []
    for run in range(1, opts.runs + 1):
        workers, queuing = shape(run)
        env = {} if queuing else {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "inf"}
        args = [*inputs, "--workers", str(workers), *opts.extra]
        began = time.monotonic()
        log = work / f"run-{run}.log"
        code, trace = watch(start(args, out, log, env), out, log)
        seconds = time.monotonic() - began
        found = fingerprint(out) if code == 0 else {}
        if reference is None and code == 0:
            reference = found
        same = verdict(differing(reference, found)) if code == 0 and reference else {}
        largest = max((p.gib for p in trace.process.values()), default=0.0)
        row = [run, workers, "on" if queuing else "off", code, f"{seconds:.0f}",
               f"{trace.tree.gib:.2f}", f"{largest:.2f}"]  # fmt: skip
        rows.append(row + [same.get(g, "-") for g in [*GROUPS, "everything else"]])
        out.rename(work / f"run-{run}")
        print(
            " | ".join(str(x) for x in rows[-1]) + (f"  (log: {log})" if code else ""), flush=True
        )
    print()
    columns = header + [*GROUPS, "everything else"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    ok = sum(r[3] == 0 for r in rows)
    identical = sum(r[3] == 0 and all(x == "same" for x in r[len(header) :]) for r in rows)
    print(f"\n{ok} of {len(rows)} runs succeeded; {identical} of {len(rows)} equal the first.")


if __name__ == "__main__":
    main()
