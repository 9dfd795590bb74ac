"""`arena run` killed with SIGKILL at random points, rerun, compared with an uninterrupted run.

Run: .venv/bin/python -m bench.kill_run [--points 10] [--seed 0] [--flywheel small|none]
     [--work runs/bench_kill_run]

The job is the main job on the small inputs of tests/conftest.py's `main_run` (132 pool
rows, two vLLM SmolLM2 models and recorded GPT-4 answers judged by SmolLM2, 4 battle
prompts, the judge measured on 3 pairs, a 20-round bootstrap; with `--flywheel small`
a first flywheel iteration, SFT then DPO of one trl step each). It runs once
uninterrupted (T seconds), then for each point: a delay drawn uniformly from [0, T]
with the seed, `arena run` started in its own process group, the whole group (driver,
embedded cluster, workers) SIGKILLed at the delay, the same command rerun to
completion, and every output compared with the uninterrupted run's.

Compared: every output `bench.job_process.fingerprint` reads (rows, manifest hashes, the
leaderboard CSV, checkpoint bytes); timestamps, run times and logs are not.
Prints one line per point (delay, what the job was doing, identical or the files that
differ) and a summary line.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

from bench.job_process import REPO, differing, doing, fingerprint, run_to_end, start
from bench.small_main_job import small_main_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flywheel", choices=("small", "none"), default="small")
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_kill_run"))
    opts = parser.parse_args()

    work = Path(opts.work)
    shutil.rmtree(work, ignore_errors=True)
    args = small_main_job(work / "inputs", opts.flywheel == "small")
    # Every run writes to the same OUT, then moves aside: checkpoint paths are part of
    # answer and verdict cache keys, so runs in two folders would differ by their path.
    out = work / "out"
    total = run_to_end(args, out, work / "uninterrupted.log")
    reference = fingerprint(out)
    out.rename(work / "uninterrupted")
    print(f"uninterrupted: {total:.0f} s, {len(reference)} outputs compared", flush=True)

    rng = random.Random(opts.seed)
    identical = 0
    for n in range(1, opts.points + 1):
        delay = rng.uniform(0, total)
        log = work / f"point-{n:02d}.log"
        process = start(args, out, log)
        try:
            process.wait(delay)
            state = f"finished before the kill ({process.returncode})"
        except subprocess.TimeoutExpired:
            state = doing(log)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        rerun = run_to_end(args, out, work / f"point-{n:02d}.rerun.log")
        diff = differing(reference, fingerprint(out))
        out.rename(work / f"point-{n:02d}")
        identical += not diff
        print(
            f"point {n}: killed at {delay:.1f} s in [{state}]; rerun {rerun:.0f} s; identical: "
            + ("yes" if not diff else f"no ({len(diff)} differ: {', '.join(diff[:8])})"),
            flush=True,
        )
    print(f"summary: {identical} of {opts.points} killed runs identical after a rerun")


if __name__ == "__main__":
    main()
