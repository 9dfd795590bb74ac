"""One `arena` command in its own process group, for benches that watch or compare whole
runs (bench.kill_run, bench.main_job_memory, bench.main_job_repeat): start it, run it to
the end, say what it was doing, and fingerprint what it wrote."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST_KEYS = ("content_hash", "rows_out", "rows")


def start(
    args: list[str], out: Path, log: Path, env: dict | None = None, command: str = "run"
) -> subprocess.Popen:
    """`arena COMMAND ARGS --out OUT`, its output in `log`, in a process group of its own
    (the embedded cluster dies with it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", command, *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def run_to_end(args: list[str], out: Path, log: Path) -> float:
    """Seconds `arena run` took; exits with its log's tail if it failed."""
    began = time.monotonic()
    code = start(args, out, log).wait()
    if code != 0:
        raise SystemExit(f"arena run exited {code}: see {log}\n{log.read_text()[-2000:]}")
    return time.monotonic() - began


def doing(log: Path) -> str:
    """What the job was doing: the last line it printed (a progress bar or a step report)."""
    with log.open("rb") as f:  # the tail is enough, and a watcher reads it every second
        f.seek(max(0, f.seek(0, 2) - 32768))
        text = f.read().decode(errors="replace").replace("\r", "\n")
    # Library warnings and logs (vLLM, Dask) say nothing about the job's step.
    noise = ("WARNING", "INFO", "(Dask Worker")
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.startswith(noise)]
    return (lines[-1][:70] if lines else "starting").replace("|", "/")


def fingerprint(out: Path) -> dict[str, object]:
    """Everything a run's results are compared by, keyed by path relative to OUT:
    - the rows of every folder of Parquet parts (stage outputs, battle records, combined
      pairs, leaderboard tables, flywheel shards and their _dropped/), in part order; the
      answer/verdict caches (under `_cache/`, append only, part names are times) as the
      set of their rows, since a key judged by a killed task and again by a rerun lands
      twice and readers keep the newest;
    - the rows of every other Parquet file (leaderboard.parquet, judge-eval verdicts, the
      battles' prompts); the judge-eval game cache (`_games/<judge>/`, one file per judged
      chunk) as the set of its rows;
    - `content_hash`, `rows_out` and `rows` of every `_manifest.json` that has them;
    - the bytes of every `*.csv` (the leaderboard) and `*.safetensors` (checkpoints).
    Timestamps, run times and logs are not compared."""
    import pyarrow.parquet as pq

    found: dict[str, object] = {}
    folders = sorted({p.parent for p in out.rglob("part-*.parquet") if not p.name.startswith(".")})
    for folder in folders:
        rows = []
        for part in sorted(folder.glob("part-*.parquet")):
            rows += [
                json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(part).to_pylist()
            ]
        cache = any(p.startswith(("_cache", "_games")) for p in folder.relative_to(out).parts)
        found[f"{folder.relative_to(out)}/ (rows)"] = sorted(set(rows)) if cache else rows
    for path in sorted(out.rglob("*.parquet")):
        if path.name.startswith(("part-", ".")):
            continue
        rows = [json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(path).to_pylist()]
        if "_games" in path.relative_to(out).parts:
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
