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

Compared (everything else, i.e. timestamps, run times and logs, is not):
- the rows of every folder of Parquet parts under OUT (stage outputs, battle records,
  combined pairs, leaderboard tables, flywheel shards and their _dropped/), in part
  order; the answer/verdict caches (folders under `_cache/`, append only, whose part
  names are times) as the set of their rows, since a key judged by a killed task and
  again by the rerun lands twice and readers keep the newest;
- the rows of every other Parquet file (leaderboard.parquet, judge_eval/verdicts.parquet,
  the battles' _work/prompts.parquet); the judge-eval game cache (`_games/<judge>/`,
  one file per judged chunk, so a resumed run has other chunks) as the set of its rows;
- `content_hash`, `rows_out` and `rows` of every `_manifest.json` that has them;
- the bytes of every `*.csv` (the leaderboard);
- the sha256 of every `*.safetensors` (the flywheel checkpoints).
Prints one line per point (delay, what the job was doing, identical or the files that
differ) and a summary line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.small_main_job import small_main_job

REPO = Path(__file__).resolve().parents[1]
MANIFEST_KEYS = ("content_hash", "rows_out", "rows")


def start(args: list[str], out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "jobs.cli", "run", *args, "--out", str(out)]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=True,  # its own group: the embedded cluster dies with it
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def run_to_end(args: list[str], out: Path, log: Path) -> float:
    began = time.monotonic()
    code = start(args, out, log).wait()
    if code != 0:
        raise SystemExit(f"arena run exited {code}: see {log}\n{log.read_text()[-2000:]}")
    return time.monotonic() - began


def doing(log: Path) -> str:
    """What the job was doing: the last line it printed (a progress bar or a step report)."""
    text = log.read_text(errors="replace").replace("\r", "\n")
    # Library warnings and logs (vLLM, Dask) say nothing about the job's step.
    noise = ("WARNING", "INFO", "(Dask Worker")
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith(noise)]
    return (lines[-1][:70] if lines else "starting").replace("|", "/")


def fingerprint(out: Path) -> dict[str, object]:
    """Everything compared, by path relative to OUT (see the module docstring)."""
    import pyarrow.parquet as pq

    found: dict[str, object] = {}
    folders = sorted({p.parent for p in out.rglob("part-*.parquet") if not p.name.startswith(".")})
    for folder in folders:
        parts = sorted(p for p in folder.glob("part-*.parquet"))
        rows = []
        for part in parts:
            rows += [
                json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(part).to_pylist()
            ]
        relative = folder.relative_to(out).parts
        cache = any(p.startswith(("_cache", "_games")) for p in relative)
        found[f"{folder.relative_to(out)}/ (rows)"] = sorted(set(rows)) if cache else rows
    for path in sorted(out.rglob("*.parquet")):  # single-file tables: leaderboard, verdicts
        if path.name.startswith(("part-", ".")):
            continue
        rows = [json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(path).to_pylist()]
        if "_games" in path.relative_to(out).parts:  # a cache: chunks depend on what was missing
            key = f"{path.parent.relative_to(out)}/ (rows)"
            found[key] = sorted(set(found.get(key, [])) | set(rows))
        else:
            found[f"{path.relative_to(out)} (rows)"] = rows
    for manifest in sorted(out.rglob("_manifest.json")):
        data = json.loads(manifest.read_text())
        kept = {k: data[k] for k in MANIFEST_KEYS if k in data}
        if kept:
            found[str(manifest.relative_to(out))] = kept
    for path in sorted([*out.rglob("*.csv"), *out.rglob("*.safetensors")]):
        found[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def differing(reference: dict, other: dict) -> list[str]:
    return sorted(k for k in reference.keys() | other.keys() if reference.get(k) != other.get(k))


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
