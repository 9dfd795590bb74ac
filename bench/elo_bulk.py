"""`arena elo` on 100M battles in 100 Parquet files, and where FastChat's method stops fitting.

    python -m bench.elo_bulk [--battles 100000000] [--files 100] [--models 200] [--rounds 100]
                             [--keep DIR] [--fastchat-cap-gib 12]

Generates FastChat-shaped battle files (model_a, model_b, winner, judge, tstamp; the
string columns dictionary-encoded in Parquet) from known strengths, one file at a
time, and keeps them in --keep DIR for the next run. Then measures wall time and
peak RSS (summed over the process tree) of `arena elo DIR --bootstrap R`:
- as it runs when no cluster is named (its embedded LocalCluster, or one process for
  small inputs: the notes column says which);
- attached (--scheduler-file) to `dask scheduler` + 2 `dask worker --nthreads 1`
  on loopback, started by the bench, with the workers' and the scheduler's peak RSS;
and FastChat's method as it runs: every battle read with pandas into one DataFrame
of string columns, FastChat's preprocessing (factorize the model names, unique
(a, b, outcome) rows by np.unique), its L-BFGS fit and multinomial bootstrap in a
pool (bench.ratings.fastchat_fit), in a child process at growing sizes (the first k
files; past the generated total the files are read again) under a watchdog that
kills it above --fastchat-cap-gib, so the first size that does not fit fails cleanly.
It prints the table, the ratings agreement between the two `arena elo` runs, with
FastChat's and with the ratings the simulation converges to, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from bench.ingest_dedup import tree_rss
from bench.ratings import simulate

ARENA = [sys.executable, "-m", "jobs.cli"]
REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


# -- battle files -------------------------------------------------------------------------
def model_names(models: int) -> list[str]:
    width = max(3, len(str(models - 1)))
    return [f"model-{i:0{width}d}" for i in range(models)]


def file_rows(battles: int, files: int) -> list[int]:
    return [battles // files + (i < battles % files) for i in range(files)]


def generate(folder: Path, battles: int, files: int, models: int, seed: int) -> list[Path]:
    """part-*.parquet in folder (reused when _bench.json and the row counts match)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = {"battles": battles, "files": files, "models": models, "seed": seed, "version": 1}
    paths = [folder / f"part-{i:05d}.parquet" for i in range(files)]
    rows = file_rows(battles, files)
    manifest = folder / "_bench.json"
    if (
        manifest.exists()
        and json.loads(manifest.read_text()) == spec
        and sorted(folder.glob("part-*.parquet")) == paths
        and all(pq.ParquetFile(p).metadata.num_rows == n for p, n in zip(paths, rows))
    ):
        print(f"battle files: reusing {files} files, {battles:,} battles in {folder}")
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    strength = np.random.default_rng(seed).normal(0, 200, models)
    names = pa.array(model_names(models))
    winners = pa.array(WINNERS)
    judge = pa.DictionaryArray.from_arrays(pa.array(np.zeros(max(rows), np.int8)), ["gpt-4-judge"])
    start, first = time.time(), 0
    for i, (path, n) in enumerate(zip(paths, rows)):
        df = simulate(n, models, seed=[seed, i + 1], strength=strength)
        outcome = df.outcome.to_numpy()  # 0 a, 1 b, 2 tie; half the ties are both-bad
        both_bad = (outcome == 2) & (np.random.default_rng([seed, i + 1, 1]).random(n) < 0.5)
        table = pa.table(
            {
                "model_a": pa.DictionaryArray.from_arrays(df.a.to_numpy(), names),
                "model_b": pa.DictionaryArray.from_arrays(df.b.to_numpy(), names),
                "winner": pa.DictionaryArray.from_arrays(outcome + both_bad, winners),
                "judge": judge[:n],
                "tstamp": 1.7e9 + 0.25 * np.arange(first, first + n, dtype=np.float64),
            }
        )
        # No Arrow schema in the footer: readers see plain string columns, as from FastChat's
        # JSON, while Parquet stores them dictionary-encoded.
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp, store_schema=False)
        tmp.rename(path)
        first += n
    (folder / "_truth.json").write_text(
        json.dumps(dict(zip(model_names(models), strength.round(6).tolist())))
    )
    manifest.write_text(json.dumps(spec))
    size = sum(p.stat().st_size for p in paths) / GIB
    print(
        f"battle files: wrote {files} files, {battles:,} battles over {models} models "
        f"({size:.2f} GiB) to {folder} in {time.time() - start:.0f}s"
    )
    return paths


# -- measuring processes ------------------------------------------------------------------
def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group of a bench child, then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (nannies' children)
    except ProcessLookupError:
        pass
    proc.wait()


def start(cmd: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=REPO, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
    )


def measure(
    cmd: list[str],
    watch: dict[str, list[subprocess.Popen]] | None = None,
    cap: float = 0,
    floor: float = 0,
) -> dict:
    """Run cmd to its end; wall seconds, peak tree RSS (bytes) of it and of each watched group
    of processes (summed), return code and its output. Killed when its tree passes cap, or when
    the machine's available memory falls under floor (other jobs share it)."""
    watch = watch or {}
    log = tempfile.TemporaryFile()
    began = time.time()
    proc = start(cmd, log)
    me = psutil.Process(proc.pid)
    others = {k: [psutil.Process(p.pid) for p in v] for k, v in watch.items()}
    peak, peaks, killed, low = 0, dict.fromkeys(watch, 0), False, False
    try:
        while proc.poll() is None:
            rss = tree_rss(me)
            peak = max(peak, rss)
            for name, procs in others.items():
                peaks[name] = max(peaks[name], sum(tree_rss(p) for p in procs))
            if cap and rss > cap:
                killed = True
                break
            if floor and psutil.virtual_memory().available < floor:
                killed = low = True
                break
            time.sleep(0.05)
    finally:
        stop(proc)
    log.seek(0)
    output = log.read().decode(errors="replace")
    return {
        "s": time.time() - began,
        "peak": peak,
        "peaks": peaks,
        "rc": proc.returncode,
        "killed": killed,
        "low": low,
        "output": output,
    }


def arena_elo(inputs: list[Path], out: Path, rounds: int, extra=(), watch=None) -> dict:
    cmd = [*ARENA, "elo", *map(str, inputs), "--out", str(out), "--bootstrap", str(rounds), *extra]
    run = measure(cmd, watch)
    if run["rc"] != 0:
        raise SystemExit(f"arena elo failed with {run['rc']}:\n{run['output'][-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    board = pd.read_csv(out / "leaderboard.csv")
    run["battles"] = int(summary["battles"])
    out_text = run["output"]
    run["path"] = (
        "embedded LocalCluster"
        if "embedded LocalCluster" in out_text
        else "attached cluster"
        if "connected to" in out_text
        else "one process, no cluster"
    )
    run["ratings"] = dict(zip(board.model, board.rating))
    return run


def loopback_cluster(tmp: Path, workers: int, memory: str):
    """`dask scheduler` + `workers` x `dask worker --nthreads 1` on 127.0.0.1, started and waited
    for; returns (scheduler file, scheduler process, worker processes, log files)."""
    from dask.distributed import Client

    sched_file = tmp / "scheduler.json"
    logs = [open(tmp / f"cluster-{i}.log", "wb") for i in range(workers + 1)]
    dask = [str(Path(sys.executable).with_name("dask"))]  # the venv's `dask` command
    scheduler = start(
        [
            *dask,
            "scheduler",
            "--scheduler-file",
            str(sched_file),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        logs[0],
    )
    procs = []
    try:
        deadline = time.time() + 60
        while not sched_file.exists():
            if scheduler.poll() is not None or time.time() > deadline:
                raise SystemExit(
                    f"dask scheduler did not start: {(tmp / 'cluster-0.log').read_text()}"
                )
            time.sleep(0.2)
        for i in range(workers):
            procs.append(
                start(
                    [
                        *dask,
                        "worker",
                        "--scheduler-file",
                        str(sched_file),
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--memory-limit",
                        memory,
                        "--dashboard-address",
                        "127.0.0.1:0",
                    ],
                    logs[i + 1],
                )
            )
        with Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
    except BaseException:
        for p in [*procs, scheduler]:
            stop(p)
        raise
    return sched_file, scheduler, procs, logs


# -- FastChat's method --------------------------------------------------------------------
def fastchat_child(spec_file: str) -> None:
    """FastChat's method on the battles of the listed files, in this (capped) process."""
    from bench.ratings import fastchat_fit

    spec = json.loads(Path(spec_file).read_text())
    began = time.perf_counter()

    def phase(name: str) -> None:
        print(f"phase {name} at {time.perf_counter() - began:.1f}s", flush=True)

    phase("read")
    battles = pd.read_parquet(spec["files"])  # all battles in one DataFrame, as FastChat has them
    read_s = time.perf_counter() - began
    phase("preprocess")
    # FastChat's preprocessing for BT, step by step: model names factorized over both columns
    # into a (battles, 2) matchup array, copied into a (battles, 3) int32 schedule (a, b,
    # outcome: 2 a wins, 1 tie, 0 b wins), whose unique rows are counted.
    n = len(battles)
    schedule = np.full((n, 3), 1, dtype=np.int32)

    def matchups_and_models():
        codes, models = pd.factorize(pd.concat([battles["model_a"], battles["model_b"]]))
        return np.column_stack([codes[:n], codes[n:]]), models

    schedule[:, [0, 1]], models = matchups_and_models()
    schedule[(battles["winner"] == "model_a").to_numpy(), 2] = 2
    schedule[(battles["winner"] == "model_b").to_numpy(), 2] = 0
    unique, weights = np.unique(schedule, return_counts=True, axis=0)
    prep_s = time.perf_counter() - began - read_s
    phase("fit and bootstrap")
    outcome = np.array([1, 2, 0])[unique[:, 2]]  # to bench.ratings' codes: 0 a, 1 b, 2 tie
    elo = fastchat_fit(unique[:, 0], unique[:, 1], outcome, weights, len(models), spec["rounds"])
    fit_s = time.perf_counter() - began - read_s - prep_s
    print(
        "result "
        + json.dumps(
            {
                "battles": n,
                "read_s": read_s,
                "prep_s": prep_s,
                "fit_s": fit_s,
                "ratings": dict(zip(map(str, models), elo.tolist())),
            }
        ),
        flush=True,
    )


def fastchat(files: list[Path], rounds: int, cap: float, floor: float, tmp: Path) -> dict:
    spec = tmp / "fastchat.json"
    spec.write_text(json.dumps({"files": list(map(str, files)), "rounds": rounds}))
    code = f"from bench.elo_bulk import fastchat_child; fastchat_child({str(spec)!r})"
    run = measure([sys.executable, "-c", code], cap=cap, floor=floor)
    lines = run["output"].splitlines()
    result = [json.loads(line[7:]) for line in lines if line.startswith("result ")]
    phases = [line[6:].rsplit(" at ", 1)[0] for line in lines if line.startswith("phase ")]
    run["phase"] = phases[-1] if phases else "start-up"
    if result and run["rc"] == 0:
        run.update(result[0])
        run["fits"] = True
    else:
        run["fits"] = False
        if run["low"]:
            run["why"] = (
                f"killed at {run['peak'] / GIB:.1f} GiB during {run['phase']}: the machine had "
                f"under {floor / GIB:.1f} GiB available"
            )
        elif run["killed"]:
            run["why"] = f"killed above the {cap / GIB:.0f} GiB cap during {run['phase']}"
        elif "MemoryError" in run["output"]:
            run["why"] = f"MemoryError during {run['phase']}"
        else:
            run["why"] = f"failed ({run['rc']}) during {run['phase']}: {run['output'][-500:]}"
    return run


def cells(run: dict) -> tuple[int, float, int]:
    return run["battles"], run["s"], run["peak"]


def parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def expected_ratings(truth: dict[str, float]) -> dict[str, float]:
    """The ratings the bench's battles converge to: a fit (ties half a win, as `arena elo` and
    FastChat count them) on the expected counts of the simulation, so a difference to it is
    sampling error alone (the 10% ties, whatever the strengths, pull ratings together)."""
    from bench.ratings import fastchat_fit

    names, s = list(truth), np.array(list(truth.values()))
    n = len(s)
    a, b = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    a, b = a[a != b], b[a != b]
    p = 1 / (1 + 10 ** ((s[b] - s[a]) / 400))
    k = np.concatenate([0.9 * p, 0.9 * (1 - p), np.full(len(a), 0.1)])
    o = np.repeat([0, 1, 2], len(a))
    elo = fastchat_fit(np.tile(a, 3), np.tile(b, 3), o, k, n, 0)
    return dict(zip(names, elo.tolist()))


def max_delta(x: dict[str, float], y: dict[str, float]) -> float:
    common = sorted(set(x) & set(y))
    a = np.array([x[m] for m in common])
    b = np.array([y[m] for m in common])
    return float(np.abs((a - a.mean()) - (b - b.mean())).max())


# -- the bench ----------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=100_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="folder for the battle files, reused by the next run")
    parser.add_argument("--workers", type=int, default=2, help="loopback cluster workers")
    parser.add_argument("--worker-memory", default="4GiB", help="loopback worker --memory-limit")
    parser.add_argument(
        "--fastchat-sizes",
        default="",
        help="battles, comma separated (e.g. 1M,10M,30M,100M,200M); default: 1%%, 10%%, 30%%, "
        "100%% and 200%% of --battles, whole files; none: skip FastChat's method",
    )
    parser.add_argument(
        "--fastchat-cap-gib", type=float, default=12, help="FastChat's process tree is killed above"
    )
    parser.add_argument(
        "--floor-gib",
        type=float,
        default=2.5,
        help="FastChat's run is also killed when the machine has less than this available",
    )
    parser.add_argument("--budget-gib", type=float, default=8, help="peak RSS ours must stay under")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-elo-bulk-"))
    try:
        folder = Path(opts.keep) if opts.keep else tmp / "battles"
        paths = generate(folder, opts.battles, opts.files, opts.models, opts.seed)
        truth = json.loads((folder / "_truth.json").read_text())
        per_file = opts.battles / opts.files
        print(
            f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
            f"cores, {psutil.virtual_memory().total / GIB:.0f} GiB RAM; {opts.rounds} bootstrap rounds"
        )

        rows = []  # (method, battles, seconds, peak bytes, note)
        embedded = arena_elo([folder], tmp / "out-embedded", opts.rounds)
        rows.append(("arena elo, default", *cells(embedded), embedded["path"]))
        print(f"  arena elo, default: {embedded['s']:.1f}s, {embedded['peak'] / GIB:.2f} GiB")

        sched_file, scheduler, workers, logs = loopback_cluster(
            tmp, opts.workers, opts.worker_memory
        )
        try:
            attached = arena_elo(
                [folder],
                tmp / "out-loopback",
                opts.rounds,
                ["--scheduler-file", str(sched_file)],
                {"scheduler": [scheduler], "workers": workers},
            )
        finally:
            for p in [*workers, scheduler]:
                stop(p)
            for f in logs:
                f.close()
        rows.append(
            (
                f"arena elo, loopback {opts.workers} workers",
                *cells(attached),
                f"{attached['path']}; client only; workers {attached['peaks']['workers'] / GIB:.2f} GiB, "
                f"scheduler {attached['peaks']['scheduler'] / GIB:.2f} GiB",
            )
        )
        print(
            f"  arena elo, loopback: {attached['s']:.1f}s, client {attached['peak'] / GIB:.2f} GiB"
        )

        if opts.fastchat_sizes == "none":
            counts = []
        elif opts.fastchat_sizes:
            counts = [
                max(1, round(parse_count(s) / per_file)) for s in opts.fastchat_sizes.split(",")
            ]
        else:
            counts = [max(1, round(opts.files * f)) for f in (0.01, 0.1, 0.3, 1, 2)]
        counts = sorted(set(counts))
        fastchat_runs = []
        for k in counts:
            files = [paths[i % len(paths)] for i in range(k)]
            run = fastchat(
                files, opts.rounds, opts.fastchat_cap_gib * GIB, opts.floor_gib * GIB, tmp
            )
            battles = sum(file_rows(opts.battles, opts.files)[i % len(paths)] for i in range(k))
            run["battles"] = battles
            again = " (files read again)" if k > len(paths) else ""
            note = again.strip() if run["fits"] else run["why"] + again
            rows.append(("FastChat method", battles, run["s"], run["peak"], note))
            print(
                f"  FastChat method, {battles:,}: {run['s']:.1f}s, {run['peak'] / GIB:.2f} GiB {note}"
            )
            fastchat_runs.append(run)
            if not run["fits"]:
                break

        fitting = [r for r in fastchat_runs if r["fits"]]
        # FastChat's largest fitting size that ours also ran at (ours ran the generated files)
        both = [r for r in fitting if r["battles"] <= embedded["battles"]]
        same = None  # ours at that size, when it is not the whole set
        if both and both[-1]["battles"] < embedded["battles"]:
            k = max(1, round(both[-1]["battles"] / per_file))
            same = arena_elo(paths[:k], tmp / "out-same", opts.rounds)
            rows.append(("arena elo, default", *cells(same), f"{same['path']}; first {k} files"))

        print(
            f"\n{'method':34}{'battles':>14}{'wall s':>9}{'peak RSS GiB':>13}{'battles/s':>13}  notes"
        )
        for method, battles, seconds, peak, note in rows:
            print(
                f"{method:34}{battles:>14,}{seconds:>9.1f}{peak / GIB:>13.2f}"
                f"{battles / seconds:>13,.0f}  {note}"
            )

        print()
        budget = opts.budget_gib * GIB
        for name, run in (("default", embedded), ("loopback client", attached)):
            print(
                f"arena elo {name}: {run['battles']:,} battles, {run['s']:.1f}s, peak RSS "
                f"{run['peak'] / GIB:.2f} GiB ({'within' if run['peak'] <= budget else 'OVER'} "
                f"{opts.budget_gib:g} GiB)"
            )
        loop_total = (
            attached["peak"] + attached["peaks"]["workers"] + attached["peaks"]["scheduler"]
        )
        print(f"loopback cluster all processes (peaks summed): {loop_total / GIB:.2f} GiB")
        print(
            f"ratings, default vs loopback: max |Δ| {max_delta(embedded['ratings'], attached['ratings']):.3f} Elo; "
            f"default vs the simulation's expected ratings: max |Δ| "
            f"{max_delta(embedded['ratings'], expected_ratings(truth)):.2f} Elo"
        )
        for run in fitting:
            if run["battles"] == embedded["battles"]:
                print(
                    f"ratings, FastChat vs arena elo at {run['battles']:,}: max |Δ| "
                    f"{max_delta(run['ratings'], embedded['ratings']):.3f} Elo"
                )
        if both:
            big = both[-1]
            ours = same or embedded
            print(
                f"at {big['battles']:,} battles (the largest size both ran): FastChat "
                f"{big['s']:.1f}s ({big['read_s']:.1f} read, {big['prep_s']:.1f} preprocess, "
                f"{big['fit_s']:.1f} fit + bootstrap), {big['peak'] / GIB:.2f} GiB; arena elo "
                f"default {ours['s']:.1f}s, {ours['peak'] / GIB:.2f} GiB: FastChat takes "
                f"{big['s'] / ours['s']:.2f}x our time and {big['peak'] / ours['peak']:.2f}x our "
                f"memory"
            )
        if fitting:
            if len(fitting) >= 2:  # peak = fixed + slope x battles, through the two largest
                x0, x1 = fitting[-2]["battles"], fitting[-1]["battles"]
                slope = (fitting[-1]["peak"] - fitting[-2]["peak"]) / (x1 - x0)
                fixed = fitting[-1]["peak"] - slope * x1
                ram = psutil.virtual_memory().total
                reach = ", ".join(
                    f"{label} ~{(limit - fixed) / slope / 1e6:,.0f}M battles"
                    for label, limit in (
                        (f"{opts.budget_gib:g} GiB", budget),
                        (f"the {opts.fastchat_cap_gib:g} GiB cap", opts.fastchat_cap_gib * GIB),
                        (f"this machine's {ram / GIB:.0f} GiB", ram),
                    )
                )
                print(
                    f"FastChat's peak RSS grows {slope:.0f} bytes per battle from {x0:,} to "
                    f"{x1:,} battles; on that line it would reach {reach}"
                )
            over = [r for r in fastchat_runs if r["peak"] > budget]
            if over:
                print(
                    f"FastChat first needs more than {opts.budget_gib:g} GiB at "
                    f"{over[0]['battles']:,} battles (peak {over[0]['peak'] / GIB:.2f} GiB"
                    f"{', then killed' if not over[0]['fits'] else ''})"
                )
        fails = [r for r in fastchat_runs if not r["fits"]]
        if fails:
            r = fails[0]
            print(
                f"FastChat's method stops fitting at {r['battles']:,} battles: {r['why']} "
                f"(peak {r['peak'] / GIB:.2f} GiB); largest that fits: "
                f"{fitting[-1]['battles'] if fitting else 0:,}"
            )
        elif fastchat_runs:
            print(
                f"FastChat's method fit every size tried, up to {fastchat_runs[-1]['battles']:,} "
                f"battles, under the {opts.fastchat_cap_gib:g} GiB cap"
            )
        if fitting:
            ratio = (embedded["battles"] / embedded["s"]) / (
                fitting[-1]["battles"] / fitting[-1]["s"]
            )
            print(
                f"throughput (battles/s), arena elo default at {embedded['battles']:,} vs FastChat "
                f"at its largest fitting size: {ratio:.1f}x"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
