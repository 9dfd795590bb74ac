"""Our near dedup against datatrove's MinHash dedup, on the same pool, in one run.

    python -m bench.near_vs_datatrove --rows 300000 [--datatrove-python PATH]

One generated pool (bench.pools, `fragments` texts: 10% repeats of an earlier row, half
of them upper-cased and padded, and 10% light edits of one) is ingested once; the text
`arena dedup --near` hashes (core.schemas.prompt_text of each row) goes, with the row's
number as id, into JSONL files (one per datatrove task) for datatrove's JsonlReader. Then,
one after the other, each tool runs in its own process, its whole process tree sampled
for RSS (bench.process_memory):

- datatrove: bench/datatrove_minhash.py, run by the python of a separate venv (datatrove
  is not a dependency of the project): MinhashDedupSignature, MinhashDedupBuckets,
  MinhashDedupCluster, MinhashDedupFilter on a LocalPipelineExecutor with `--workers`
  tasks and workers (the bucket stage: one task a bucket), datatrove's default
  MinhashConfig (word 5-grams, 14 buckets x 8 hashes);
- ours: `arena dedup --near POOL --out DIR --ngram 5 --num-perm B*R --threshold T` on the
  embedded LocalCluster with `--workers` workers, T the highest threshold (in steps of
  0.01) for which datasketch's `_optimal_param(T, B*R, 0.5, 0.5)` gives datatrove's
  (bands, rows); our pairs must then also reach an estimated Jaccard of T, where
  datatrove takes every bucket collision as a duplicate.

Before them, our signature stage alone, in this process, on the same pool and config:
the bytes its band-key files (`_signatures/_bands/`, the shuffle that grows with rows x
bands) and its signature files take, a pool row.

Printed: a Markdown table (wall seconds, peak RSS summed over the tree, the largest single
process, rows dropped, how many of them the other tool dropped too, recall and precision
against the planted twins) and the ratios ours/datatrove. Planted twins are the rows the
generator made as a repeat or a light edit of an earlier one (found by replaying
bench.pools.pool_texts, checked text for text) and rows with the same text after
lower-casing and collapsing spaces; each group of twins should lose all but one row, so a
dropped row counts as right while its group has more than one row left.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import pools

HERE = Path(__file__).resolve().parents[1]
DATATROVE_VENV = Path("/work/bench-envs/datatrove")
DATATROVE_VERSION = "0.10.1"
INSTALL = (
    f"python3 -m venv {DATATROVE_VENV} && {DATATROVE_VENV}/bin/pip install "
    f'"datatrove[processing]=={DATATROVE_VERSION}" spacy orjson'
)
POOL = {"duplicate_share": 0.1, "texts_from": "fragments", "edit_share": 0.1}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# bench.process_memory's kinds as they read here: datatrove's pool workers are children of
# its forkserver, not of its process, so they count as "engine" there.
KINDS = {"driver": "the command's own process", "engine": "a worker below a forkserver"}


def datatrove_defaults(python: str) -> dict | None:
    """datatrove's version and default MinhashConfig, from its own venv; None if that
    python cannot import it."""
    code = (
        "import json; from importlib.metadata import version; "
        "from datatrove.pipeline.dedup.minhash import MinhashConfig; c = MinhashConfig(); "
        "print(json.dumps({'version': version('datatrove'), 'n_grams': c.n_grams, "
        "'num_buckets': c.num_buckets, 'hashes_per_bucket': c.hashes_per_bucket}))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    except OSError:
        return None
    return json.loads(done.stdout) if done.returncode == 0 else None


def matching_bands(bands: int, rows: int) -> tuple[float, int, tuple[int, int]]:
    """(threshold, num_perm, our (bands, rows)): the highest threshold in steps of 0.01 whose
    datasketch banding at bands * rows permutations is (bands, rows); if none is, the
    threshold whose banding is closest."""
    from pipeline.dedup.minhash import lsh_bands

    num_perm = bands * rows
    choices = [(t / 100, lsh_bands(t / 100, num_perm)) for t in range(1, 100)]
    exact = [c for c in choices if c[1] == (bands, rows)]
    if exact:
        return exact[-1][0], num_perm, exact[-1][1]
    best = min(choices, key=lambda c: (abs(c[1][0] - bands) + abs(c[1][1] - rows), -c[0]))
    return best[0], num_perm, best[1]


def planted_groups(rows: int, seed: int = 0) -> np.ndarray:
    """Each row's planted-twin group label (bench.pools.pool_texts replayed, see the module
    docstring)."""
    rng = random.Random(seed)
    texts: list[str] = []
    text_rows: list[int] = []
    parent = list(range(rows))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    same_text: dict[str, int] = {}
    replay = pools.pool_texts(rows, seed=seed, **POOL)
    for i in range(rows):
        draw = rng.random() if texts else 1.0
        if draw < POOL["duplicate_share"]:
            source = rng.choice(range(len(texts)))  # the same draw as rng.choice(texts)
            text = texts[source]
            if rng.random() < 0.5:
                text = "  " + text.upper() + " "
            join(i, text_rows[source])
        else:
            if draw < POOL["duplicate_share"] + POOL["edit_share"]:
                source = rng.choice(range(len(texts)))
                text = pools._light_edit(rng, texts[source])
                join(i, text_rows[source])
            else:
                text = pools._fragment_instruction(rng)
            if len(texts) < 100_000:
                texts.append(text)
                text_rows.append(i)
        generated = next(replay)[0]
        if generated != text:
            raise SystemExit(f"row {i}: the replay of bench.pools.pool_texts went astray")
        key = " ".join(text.lower().split())
        join(i, same_text.setdefault(key, i))
    return np.array([find(i) for i in range(rows)])


def score(dropped: set[int], groups: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of dropped rows against the planted groups."""
    sizes = np.bincount(groups, minlength=len(groups))
    should = int((sizes[sizes > 1] - 1).sum())
    hit = np.bincount(groups[sorted(dropped)], minlength=len(groups)) if dropped else sizes * 0
    right = int(np.minimum(hit, np.maximum(sizes - 1, 0)).sum())
    return right / max(should, 1), right / max(len(dropped), 1)


def write_datatrove_input(pool: Path, folder: Path, files: int) -> int:
    """The texts our near dedup hashes, in source order, as `files` JSONL files of
    contiguous rows (`id`: the row's number in the generated pool)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from core.parquet_io import part_files
    from core.schemas import prompt_text

    table = pa.concat_tables(
        pq.read_table(p, columns=["messages", "source_line"]) for p in part_files(pool)
    )
    table = table.take(pc.sort_indices(table, [("source_line", "ascending")]))
    lines = table.column("source_line").to_pylist()
    messages = table.column("messages").to_pylist()
    folder.mkdir(parents=True)
    per_file = -(-len(lines) // files)
    for f in range(files):
        with open(folder / f"{f:05d}.jsonl", "w") as out:
            for line, m in zip(
                lines[f * per_file : (f + 1) * per_file],
                messages[f * per_file : (f + 1) * per_file],
            ):
                out.write(json.dumps({"id": str(line - 1), "text": prompt_text(m)}) + "\n")
    return len(lines)


def work_bytes(pool: Path, work: Path, threshold: float, num_perm: int, ngram: int) -> dict:
    """Bytes a pool row of our near dedup's band files and signature files: its signature
    stage run alone here, its folder removed after."""
    import shutil

    from pipeline.dedup.near import BANDS_DIR, MinHashSignatures, NearDedup, NearDedupConfig

    config = NearDedupConfig(threshold=threshold, num_perm=num_perm, ngram=ngram)
    near = NearDedup(pool, work, config)
    stage = MinHashSignatures(pool, near.signed, config, near.buckets)
    rows = sum(stage.execute(task).rows_in for task in stage.plan())
    bands = sum(f.stat().st_size for f in (near.signed / BANDS_DIR).rglob("*.parquet"))
    signed = sum(f.stat().st_size for f in near.signed.glob("*.parquet"))
    shutil.rmtree(work)
    return {"buckets": near.buckets, "bands": bands / rows, "signatures": signed / rows}


def watched(
    command: list[str], out: Path, log: Path, interval: float, steps_in_log: bool = True
) -> dict:
    """Run `command` alone, its process tree sampled: seconds, peaks (GiB), its stdout.
    The step a peak happened in: the newest folder under `out`, and (`steps_in_log`) the
    label of the last progress bar in the log."""
    from bench.process_memory import watch

    stdout = log.with_suffix(".out")
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=HERE,
        env=ENV,
        start_new_session=True,
        stdout=stdout.open("w"),
        stderr=log.open("w"),
    )
    code, trace = watch(
        process, out, log if steps_in_log else log.with_suffix(".none"), interval=interval
    )
    seconds = time.monotonic() - began
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}:\n{log.read_text()[-3000:]}")
    kind, one = max(trace.process.items(), key=lambda item: item[1].gib)
    return {
        "s": seconds,
        "peaks": f"tree peak during {trace.tree.step!r}; largest process: "
        f"{KINDS.get(kind, kind)}, {one.gib:.2f} GiB during {one.step!r}",
        "tree": trace.tree.gib,
        "tree_pss": trace.tree_pss.gib,
        "largest": max(p.gib for p in trace.process.values()),
        "samples": trace.samples,
        "stdout": stdout.read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument(
        "--datatrove-python",
        default=str(DATATROVE_VENV / "bin" / "python"),
        help="python of a venv with datatrove (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="our Dask workers; datatrove's tasks and workers"
    )
    parser.add_argument("--interval", type=float, default=0.25, help="RSS sampling, seconds")
    parser.add_argument("--work", help="keep the pool and both outputs here (default: a temp dir)")
    opts = parser.parse_args()

    defaults = datatrove_defaults(opts.datatrove_python)
    if defaults is None:
        print(f"no datatrove at {opts.datatrove_python}; create its venv with: {INSTALL}")
        raise SystemExit(2)
    ngram = defaults["n_grams"]
    bands, rows_per_band = defaults["num_buckets"], defaults["hashes_per_bucket"]
    threshold, num_perm, ours_bands = matching_bands(bands, rows_per_band)

    with tempfile.TemporaryDirectory(prefix="bench-near-dt-", dir=opts.work) as tmp:
        tmp = Path(tmp)
        began = time.monotonic()
        jsonl = pools.write_pool(tmp / "pool.jsonl", opts.rows, **POOL)
        groups = planted_groups(opts.rows)
        pool = tmp / "pool"
        subprocess.run(
            [sys.executable, "-m", "jobs.cli", "ingest", str(jsonl), "--out", str(pool)]
            + ["--workers", str(opts.workers)],
            cwd=HERE,
            env=ENV,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        n = write_datatrove_input(pool, tmp / "datatrove-in", opts.workers)
        sizes = np.bincount(groups)
        print(
            f"pool: {n:,} rows ({opts.rows:,} generated), {int((sizes[sizes > 1] - 1).sum()):,} "
            f"planted twins to drop; prepared in {time.monotonic() - began:.0f}s",
            flush=True,
        )

        disk = work_bytes(pool, tmp / "work-bytes", threshold, num_perm, ngram)
        print(
            f"ours on disk: band files {disk['bands']:.0f} bytes a pool row ({disk['buckets']} "
            f"buckets), signature files {disk['signatures']:.0f}",
            flush=True,
        )

        dt_work = tmp / "datatrove"
        dt = watched(
            [opts.datatrove_python, str(HERE / "bench" / "datatrove_minhash.py")]
            + [str(tmp / "datatrove-in"), str(dt_work)]
            + ["--tasks", str(opts.workers), "--workers", str(opts.workers)],
            dt_work,
            tmp / "datatrove.log",
            opts.interval,
            steps_in_log=False,  # its log lines start with a time, not a step
        )
        dt_info = json.loads(dt["stdout"].strip().splitlines()[-1])
        dt_dropped = set()
        for path in sorted((dt_work / "removed").glob("*.jsonl.gz")):
            with gzip.open(path, "rt") as f:
                dt_dropped.update(int(json.loads(line)["id"]) for line in f)

        near = tmp / "near"
        ours = watched(
            [sys.executable, "-m", "jobs.cli", "dedup", "--near", str(pool), "--out", str(near)]
            + ["--ngram", str(ngram), "--num-perm", str(num_perm), "--threshold", str(threshold)]
            + ["--workers", str(opts.workers)],
            near,
            tmp / "near.log",
            opts.interval,
        )
        import pyarrow.parquet as pq

        clusters = pq.read_table(
            near / "_clusters" / "clusters.parquet",
            columns=["source_line"],
            filters=[("kept", "=", False)],
        )
        our_dropped = {line - 1 for line in clusters.column("source_line").to_pylist()}
        manifest = json.loads((near / "_manifest.json").read_text())
        if manifest["summary"]["dropped"] != len(our_dropped):
            raise SystemExit("our clusters file and our manifest disagree on the dropped rows")

    both = len(our_dropped & dt_dropped)
    print()
    print(
        f"datatrove {dt_info['datatrove']}: MinhashConfig() defaults: n_grams {dt_info['n_grams']}, "
        f"{dt_info['num_buckets']} buckets x {dt_info['hashes_per_bucket']} hashes "
        f"({dt_info['hash']}), LocalPipelineExecutor tasks {opts.workers}, workers "
        f"{opts.workers}; a bucket collision is a duplicate; stage seconds {dt_info['seconds']}"
    )
    same = "the same" if ours_bands == (bands, rows_per_band) else "NOT the same (closest)"
    print(
        f"ours: arena dedup --near --ngram {ngram} --num-perm {num_perm} --threshold "
        f"{threshold:g} -> datasketch banding {ours_bands[0]} bands x {ours_bands[1]} rows, "
        f"{same} as datatrove's; a pair also needs estimated Jaccard >= {threshold:g}; "
        f"embedded LocalCluster, {opts.workers} workers"
    )
    print()
    print(
        "| rows | tool | wall s | peak RSS summed GiB | (PSS summed) | largest process GiB "
        "| dropped | also dropped by the other | recall / precision vs planted |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r, dropped in (("ours", ours, our_dropped), ("datatrove", dt, dt_dropped)):
        recall, precision = score(dropped, groups)
        print(
            f"| {n:,} | {name} | {r['s']:.1f} | {r['tree']:.2f} | {r['tree_pss']:.2f} "
            f"| {r['largest']:.2f} | {len(dropped):,} | {both:,} | {recall:.3f} / {precision:.3f} |"
        )
    time_ratio, rss_ratio = ours["s"] / dt["s"], ours["tree"] / dt["tree"]
    print()
    print(
        f"ours/datatrove: wall time {time_ratio:.2f}x (target <= 0.5x: "
        f"{'met' if time_ratio <= 0.5 else 'NOT met'}), peak RSS summed {rss_ratio:.2f}x "
        f"(target <= 2x: {'met' if rss_ratio <= 2 else 'NOT met'}), largest process "
        f"{ours['largest'] / dt['largest']:.2f}x"
    )
    print(f"ours: {ours['peaks']}")
    print(f"datatrove: {dt['peaks']}")
    print(
        f"dropped by ours only {len(our_dropped - dt_dropped):,}, by datatrove only "
        f"{len(dt_dropped - our_dropped):,}, by both {both:,}"
    )


if __name__ == "__main__":
    main()
