"""Semantic dedup at scale, on `dask scheduler` + 2 `dask worker` processes on loopback.

    python -m bench.semantic_scale [--sizes 250000,1000000] [--exact-up-to 100000]
        [--passes "clusters,assign 1"]

Per size, a pool of unit vectors is written directly (the bench measures the dedup, not
the embedder): rows spread over 1,000 topics (cosine ~0.5 within a topic, ~0 across, as prompts on
one subject), and
a tenth of them planted near duplicates of an earlier row (cosine 0.96-0.99). Then
`arena dedup --semantic POOL --search clusters` runs attached by scheduler file, at its
defaults and with `--assign 1` (SemDeDup's single assignment, the baseline of the
defaults' cost and recall), while the job's process tree and each worker's are sampled
for RSS. Where it fits (`--exact-up-to`), the exact global pass runs on the same vectors. Per size it prints
wall seconds, seconds per 100k rows (and their ratio to the smallest size: linear cost is
a flat ratio), the workers' CPU seconds per 100k rows (the same ratio, which other work on
the machine barely moves), peak RSS of the driver and of the largest worker, rows dropped, recall and
precision against the planted rows, agreement with the exact pass, and per step the
workers' CPU seconds (sampled over the step's span) and its tasks' wall seconds per 100k
rows, which say where any growth comes from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

from bench.job_process import REPO
from bench.process_memory import GIB, tree_sizes

DIM = 384  # MiniLM's width
TOPICS = 1_000
BANK = 1 << 16  # noise vectors rows are built from
PERIOD = math.lcm(TOPICS, BANK)  # 8,192,000 bases
PART_ROWS = 10_000
PLANTED = 0.1


def _bank(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return unit(rng.standard_normal((TOPICS, DIM))), unit(rng.standard_normal((BANK, DIM)))


def _base(k: np.ndarray, topics: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The vector of base row k: its topic and two noise vectors no other base row shares all
    three of. Topic and first noise repeat every PERIOD bases, so the second noise vector
    also moves with k // PERIOD (without that, 10M rows held 810,820 exact copies)."""
    second = (k * 104729 + k // PERIOD) % BANK
    v = 0.7 * topics[k % TOPICS] + 0.5 * noise[(k * 7919) % BANK] + 0.5 * noise[second]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write_pool(folder: Path, rows: int, seed: int = 0) -> int:
    """Parts of PART_ROWS rows (prompt_id, embedding); returns the planted rows. A planted
    row is its base row plus noise; its `planted` flag is in the prompt id (`d` prefix)."""
    from core.parquet_io import write_parquet_atomic
    from pipeline.evalset.embed import VECTOR_ROW_GROUP

    topics, noise = _bank(seed)
    rng = np.random.default_rng(seed + 1)
    bases = planted = 0
    for part, start in enumerate(range(0, rows, PART_ROWS)):
        n = min(PART_ROWS, rows - start)
        is_dup = rng.random(n) < PLANTED
        is_dup[: 1 if bases == 0 else 0] = False  # the first row has nothing to copy
        base_ids = bases + np.cumsum(~is_dup) - 1  # base number of each base row
        copy_of = np.floor(rng.random(n) * np.maximum(base_ids, 1)).astype(np.int64)
        k = np.where(is_dup, copy_of, base_ids)
        vectors = _base(k, topics, noise)
        eps = rng.uniform(0.15, 0.28, n)[:, None]  # cosine 1 / sqrt(1 + eps^2): 0.96-0.99
        jitter = noise[(np.arange(start, start + n) * 31 + 17) % BANK]
        vectors = np.where(is_dup[:, None], vectors + eps * jitter, vectors)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"{'d' if d else 'b'}{start + i:010d}" for i, d in enumerate(is_dup)]
        column = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).ravel()), DIM
        )
        write_parquet_atomic(  # in row groups, as the embed stage writes them
            pa.table({"prompt_id": ids, "embedding": column}),
            folder / f"part-{part:05d}.parquet",
            VECTOR_ROW_GROUP,
        )
        bases += int((~is_dup).sum())
        planted += int(is_dup.sum())
    return planted


class Loopback:
    """A scheduler and two single-threaded workers, each its own process group."""

    def __init__(self, folder: Path):
        self.file = folder / "scheduler.json"
        self.file.unlink(missing_ok=True)  # a killed run's file names a scheduler long gone
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        dask = str(Path(sys.executable).parent / "dask")
        quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.scheduler = subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
             ":0", "--scheduler-file", str(self.file)], **quiet,
        )  # fmt: skip
        self.workers = [
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    "--scheduler-file",
                    str(self.file),
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                ],
                **quiet,
            )  # fmt: skip
            for _ in range(2)
        ]

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            p.terminate()
        for p in [*self.workers, self.scheduler]:
            p.wait(30)


def _tree_gib(pid: int) -> float:
    return sum(rss for _, _, rss, _ in tree_sizes(pid)) / GIB


def _cpu_seconds(pids: list[int]) -> float:
    """User and system seconds the processes (and their children) have run: unlike wall
    time, barely moved by other work on the machine, so linearity shows under load too."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def run_dedup(pool: Path, out: Path, cluster: Loopback, extra: list[str]) -> dict:
    """`arena dedup --semantic` attached to the loopback cluster, memory sampled every 0.5 s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "jobs.cli", "dedup", "--semantic", str(pool), "--out", str(out)]
    argv += ["--scheduler-file", str(cluster.file), "--overwrite", *extra]
    log = out.parent / f"{out.name}.log"
    workers = [w.pid for w in cluster.workers]
    began, cpu_before = time.monotonic(), _cpu_seconds(workers)
    job = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    driver = worker = 0.0
    cpu = [(time.time(), cpu_before)]  # (Unix time, the workers' CPU seconds so far)
    while job.poll() is None:
        driver = max(driver, _tree_gib(job.pid))
        worker = max([worker, *(_tree_gib(w.pid) for w in cluster.workers)])
        cpu.append((time.time(), _cpu_seconds(workers)))
        time.sleep(0.5)
    cpu.append((time.time(), _cpu_seconds(workers)))
    if job.returncode:
        raise SystemExit(f"arena dedup exited {job.returncode}: {log.read_text()[-2000:]}")
    summary = json.loads((out / "_manifest.json").read_text())["summary"]
    return {
        "seconds": time.monotonic() - began,
        "worker_cpu": _cpu_seconds(workers) - cpu_before,
        "driver": driver,
        "worker": worker,
        "dropped": set(pd.read_parquet(out / "_dropped", columns=["prompt_id"]).prompt_id),
        "a_row": summary.get("clusters_a_row", 1.0),
        "steps": {
            name: (_cpu_between(cpu, step["started"], step["finished"]), step["worker_seconds"])
            for name, step in summary.get("steps", {}).items()
        },
    }


def _cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """The workers' CPU seconds spent between two Unix times, read off the samples."""
    times, totals = zip(*samples, strict=True)
    return float(np.interp(end, times, totals) - np.interp(start, times, totals))


def _steps(steps: dict, rows: int) -> str:
    """Per step, the workers' CPU seconds and the tasks' wall seconds per 100k rows, e.g.
    `semantic-shuffle 9.1 / 10.0`: a step whose figure grows with the pool loses linearity."""
    return ", ".join(
        f"{name} {cpu / rows * 1e5:.1f} / {wall / rows * 1e5:.1f}"
        for name, (cpu, wall) in steps.items()
    )


def _agreement(found: set, truth: set) -> str:
    hit = len(found & truth)
    return f"{hit / max(len(truth), 1):.4f} / {hit / max(len(found), 1):.4f}"


# What runs at every size: the clusters pass at its defaults, and SemDeDup's single
# assignment, whose recall and cost the defaults are measured against.
PASSES = (
    ("clusters", ["--search", "clusters"]),
    ("assign 1", ["--search", "clusters", "--assign", "1"]),
)
HEADER = (
    "| rows | pass | s | s/100k | s/100k vs first size | worker CPU s/100k | vs first size "
    "| clusters a row | driver GiB | largest worker GiB | dropped "
    "| recall / precision vs planted | vs exact pass | per step: CPU / task s per 100k |\n"
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--exact-up-to", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--passes", default=",".join(name for name, _ in PASSES), help="which of PASSES to run"
    )
    args = parser.parse_args()
    passes = [(n, f) for n, f in PASSES if n in args.passes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="semantic_scale-"))
    work.mkdir(parents=True, exist_ok=True)
    cluster = Loopback(work)
    lines, first = [], {}
    try:
        while not cluster.file.exists():
            time.sleep(0.2)
        from dask.distributed import Client

        # Both workers, before any run: a job attached by file starts once one has joined.
        with Client(scheduler_file=str(cluster.file), timeout=120) as client:
            client.wait_for_workers(2, timeout=300)
        print(HEADER, flush=True)
        for size in (int(s) for s in args.sizes.split(",")):
            pool = work / f"pool-{size}"
            if not pool.exists():
                write_pool(pool, size)
            ids = pd.read_parquet(pool, columns=["prompt_id"]).prompt_id
            truth = set(ids[ids.str.startswith("d")])
            exact = None
            if size <= args.exact_up_to:
                exact = run_dedup(pool, work / f"exact-{size}", cluster, ["--search", "exact"])
            for name, flags in passes:
                run = run_dedup(pool, work / f"{name.replace(' ', '')}-{size}", cluster, flags)
                per_100k = run["seconds"] / size * 100_000
                cpu_100k = run["worker_cpu"] / size * 100_000
                first.setdefault(name, per_100k)
                first.setdefault(f"{name} cpu", cpu_100k)
                versus = _agreement(run["dropped"], exact["dropped"]) if exact else "not run"
                line = (
                    f"| {size:,} | {name} | {run['seconds']:.0f} | {per_100k:.1f} | "
                    f"{per_100k / first[name]:.2f} | {cpu_100k:.1f} | "
                    f"{cpu_100k / first[f'{name} cpu']:.2f} | {run['a_row']:.2f} | "
                    f"{run['driver']:.2f} | "
                    f"{run['worker']:.2f} | {len(run['dropped']):,} of {len(truth):,} planted | "
                    f"{_agreement(run['dropped'], truth)} | {versus} | "
                    f"{_steps(run['steps'], size)} |"
                )
                lines.append(line)
                print(line, flush=True)
            if exact:
                line = (
                    f"| {size:,} | exact | {exact['seconds']:.0f} | "
                    f"{exact['seconds'] / size * 100_000:.1f} | | "
                    f"{exact['worker_cpu'] / size * 100_000:.1f} | | | {exact['driver']:.2f} | "
                    f"{exact['worker']:.2f} | {len(exact['dropped']):,} | "
                    f"{_agreement(exact['dropped'], truth)} | | {_steps(exact['steps'], size)} |"
                )
                lines.append(line)
                print(line, flush=True)
    finally:
        cluster.close()
    print("\nsemantic dedup on `dask scheduler` + 2 workers x 1 thread (loopback):")
    print(HEADER)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
