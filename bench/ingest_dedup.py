"""Ingest + exact dedup of a generated pool on the embedded cluster, with a crash in the middle.

    python -m bench.ingest_dedup [--rows 2000000]
    python -m bench.ingest_dedup --near --sizes 100000,300000 [--before-code DIR]

Measures wall time and peak RSS (the job's whole process tree: client,
scheduler, workers) of an uninterrupted run, then a run killed with SIGKILL
mid-ingest and mid-dedup and resumed, and checks that both give the same rows
and content hash. The baseline beside it: the plain single-process way,
pandas.read_json(lines=True) + drop_duplicates on the same file.

--near: `arena dedup --near` on ingested pools of each size (real prompt fragments, with
exact copies and light edits), printing seconds per 100k rows and the peak RSS of the
driver and of the workers (bench.process_memory), then each size's seconds per 100k rows
over the first size's, taken from the stage's own seconds in its manifest (no cluster
start; 1.0 for a linear cost). --before-code DIR runs the same
command from another checkout of the project too (`git archive REV | tar -x -C DIR`; an
earlier near dedup, such as the one that banded in the driver) on the same pool, and
says whether both kept the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.pools import write_pool

ARENA = [sys.executable, "-m", "jobs.cli"]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def rss_sample(proc: psutil.Process) -> tuple[int, int, int]:
    """(whole tree, the process itself, its largest descendant) RSS bytes. For an `arena`
    run on the embedded cluster: all, the driver (client and scheduler), the largest
    worker."""
    own, largest, total = 0, 0, 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        if p.pid == proc.pid:
            own = rss
        else:
            largest = max(largest, rss)
    return total, own, largest


def run(
    args: list[str],
    kill_when: Path | None = None,
    at_least: int = 0,
    samples: list | None = None,
    log_path: Path | None = None,
) -> tuple[float, int, bool]:
    """(seconds, peak tree RSS bytes, killed?) of one CLI run. With `samples`, every
    0.1 s sample is appended to it as (unix time, *rss_sample); with `log_path`, the
    child's stderr is kept there."""
    start = time.time()
    # the child's messages, shown if it fails
    log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [*ARENA, *args],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    ps, peak, killed = psutil.Process(proc.pid), 0, False
    while proc.poll() is None:
        if samples is None:
            peak = max(peak, tree_rss(ps))
        else:
            sample = rss_sample(ps)
            samples.append((time.time(), *sample))
            peak = max(peak, sample[0])
        if (
            kill_when is not None
            and kill_when.is_dir()
            and len(list(kill_when.glob("*.json"))) >= at_least
        ):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.1)
    proc.wait()
    if not killed and proc.returncode != 0:
        log.seek(0)
        tail = log.read().decode(errors="replace")[-3000:]
        raise SystemExit(f"arena {' '.join(args)} failed with {proc.returncode}:\n{tail}")
    log.close()
    return time.time() - start, peak, killed


def baseline_child(pool: str) -> None:
    """Plain pandas in one process: read everything, normalise the text, drop duplicates."""
    import resource

    import pandas as pd

    t = time.time()
    df = pd.read_json(pool, lines=True)
    fields = [
        c
        for c in ("prompt", "instruction", "input", "turns", "messages", "conversations")
        if c in df
    ]
    text = df[fields].fillna("").astype(str).fillna("").agg("\x1f".join, axis=1)
    key = text.str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    kept = int((~key.duplicated()).sum())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"s": time.time() - t, "rows": kept, "rss": rss}))


def baseline(pool: Path) -> tuple[float, int, int]:
    """Run baseline_child in a fresh process so its peak RSS is its own."""
    code = f"from bench.ingest_dedup import baseline_child; baseline_child({str(pool)!r})"
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    return out["s"], out["rss"], out["rows"]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text())


def near_run(code: Path, pool: Path, out: Path, workers: int) -> dict:
    """`arena dedup --near` run from the checkout `code`, watched: seconds, peaks, manifest."""
    from bench.process_memory import watch

    log = out.with_suffix(".log")
    began = time.monotonic()
    process = subprocess.Popen(
        [*ARENA, "dedup", "--near", str(pool), "--out", str(out), "--workers", str(workers)],
        cwd=code,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)},
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    code_, trace = watch(process, out, log, interval=0.5)
    if code_ != 0:
        raise SystemExit(f"near dedup from {code} exited {code_}:\n{log.read_text()[-3000:]}")
    return {
        "s": time.monotonic() - began,
        "driver": trace.process["driver"].gib,
        "worker": trace.process["worker"].gib,
        "worker_step": trace.process["worker"].step,
        "workers": trace.total["worker"].gib,
        "manifest": manifest(out),
    }


def near_main(opts) -> None:
    here = Path(__file__).resolve().parents[1]
    codes = [("now", here)] + ([("before", Path(opts.before_code))] if opts.before_code else [])
    print(
        f"{'rows':>9} {'code':>7} {'s':>7} {'s/100k':>7} {'driver GiB':>11} "
        f"{'worker GiB':>11} {'workers GiB':>12} {'dropped':>8}  same rows  worker peak in"
    )
    per_100k: dict[str, list[tuple[int, float]]] = {}  # code -> (rows, s/100k) a size
    for rows in opts.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-near-") as tmp:
            tmp = Path(tmp)
            jsonl = write_pool(
                tmp / "pool.jsonl",
                rows,
                duplicate_share=0.1,
                texts_from="fragments",
                edit_share=0.1,
            )
            pool = tmp / "pool"
            run(["ingest", str(jsonl), "--out", str(pool), "--workers", str(opts.workers)])
            first = None
            for name, code in codes:
                r = near_run(code, pool, tmp / f"near-{name}", opts.workers)
                m = r["manifest"]
                first = first or m
                same = m["content_hash"] == first["content_hash"]
                print(
                    f"{m['rows_in']:>9,} {name:>7} {r['s']:>7.1f} {r['s'] / m['rows_in'] * 1e5:>7.1f} "
                    f"{r['driver']:>11.2f} {r['worker']:>11.2f} {r['workers']:>12.2f} "
                    f"{m['summary']['dropped']:>8,}  {same!s:>9}  {r['worker_step']}",
                    flush=True,
                )
                stage_s = m["seconds"] / m["rows_in"] * 1e5
                per_100k.setdefault(name, []).append((m["rows_in"], stage_s))
    for name, sizes in per_100k.items():
        (rows0, base), *rest = sizes
        for rows, cost in rest:
            print(
                f"{name}: the near-dedup stage's s/100k (its manifest's seconds: no cluster start) "
                f"at {rows:,} rows {cost:.1f}, at {rows0:,} rows {base:.1f}: {cost / base:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-mb", type=int, default=16)
    parser.add_argument("--near", action="store_true", help="measure near dedup instead")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[100_000, 300_000],
        help="--near: pool sizes in rows, comma-separated",
    )
    parser.add_argument("--before-code", help="--near: also run it from this checkout")
    opts = parser.parse_args()
    if opts.near:
        near_main(opts)
        return
    gib = 1 << 30
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        t = time.time()
        pool = write_pool(tmp / "pool.jsonl", opts.rows, duplicate_share=0.2)
        print(
            f"pool: {opts.rows:,} rows, {pool.stat().st_size / 2**20:.0f} MiB, generated in {time.time() - t:.0f}s"
        )
        cluster = ["--workers", str(opts.workers)]
        ingest = ["ingest", str(pool), "--chunk-mb", str(opts.chunk_mb), *cluster]

        s_ing, rss_ing, _ = run([*ingest, "--out", str(tmp / "clean")])
        s_dd, rss_dd, _ = run(
            ["dedup", "--exact", str(tmp / "clean"), "--out", str(tmp / "clean-dd"), *cluster]
        )
        clean, clean_dd = manifest(tmp / "clean"), manifest(tmp / "clean-dd")

        crashed, crashed_dd = tmp / "crashed", tmp / "crashed-dd"
        _, _, killed1 = run([*ingest, "--out", str(crashed)], crashed / "_done", at_least=3)
        s_res, _, _ = run([*ingest, "--out", str(crashed)])
        dd = ["dedup", "--exact", str(crashed), "--out", str(crashed_dd), *cluster]
        _, _, killed2 = run(dd, crashed_dd / "_shuffle" / "_done", at_least=2)
        run(dd)
        same = (
            manifest(crashed)["content_hash"] == clean["content_hash"]
            and manifest(crashed_dd)["content_hash"] == clean_dd["content_hash"]
        )

        s_base, rss_base, base_rows = baseline(pool)

    rows = clean["rows_out"]
    print(f"{'':28}{'seconds':>10}{'rows/s':>12}{'peak RSS GiB':>14}")
    print(f"{'arena ingest':28}{s_ing:>10.1f}{rows / s_ing:>12,.0f}{rss_ing / gib:>14.2f}")
    print(f"{'arena dedup --exact':28}{s_dd:>10.1f}{rows / s_dd:>12,.0f}{rss_dd / gib:>14.2f}")
    total = s_ing + s_dd
    print(
        f"{'arena ingest + dedup':28}{total:>10.1f}{rows / total:>12,.0f}{max(rss_ing, rss_dd) / gib:>14.2f}"
    )
    print(
        f"{'baseline pandas (1 process)':28}{s_base:>10.1f}{rows / s_base:>12,.0f}{rss_base / gib:>14.2f}"
    )
    print(
        f"ratio time arena/baseline: {total / s_base:.2f}x; "
        f"peak RSS arena/baseline: {max(rss_ing, rss_dd) / rss_base:.2f}x"
    )
    print(f"kept after exact dedup: arena {clean_dd['rows_out']:,}; baseline {base_rows:,}")
    print(
        f"crash test: killed mid-ingest={killed1}, mid-dedup={killed2}; resumed ingest took {s_res:.1f}s; "
        f"same content hash as the uninterrupted run: {same}"
    )


if __name__ == "__main__":
    main()
