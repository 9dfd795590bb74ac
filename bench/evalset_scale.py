"""The whole WizardArena build at growing pool sizes, on the embedded cluster.

    python -m bench.evalset_scale [--sizes 100000,300000,1000000] [--texts fragments]
        [--recipe bench/recipes/wizardarena_scale.yaml] [--difficulty-judge NAME]
        [--embed-model MODEL] [any other build-evalset flag, e.g. --semantic-threshold 0.9]

For each size it generates a pool (bench.pools: every input shape, 10% exact
duplicates; `fragments`: spans of real prompts with 5% light edits, or
`templates`: near twins of 720 templates), runs `arena build-evalset` (ingest, exact
dedup, embedding on the workers, semantic dedup, FAISS K-means, Diverse, Hard
candidates scored by a judge, Mix) as a separate process, and prints wall time, peak
RSS of the whole process tree (client, scheduler, workers) and seconds per 100k rows,
so the growth with size can be read off (the judge's share is fixed by the recipe:
clusters x candidates, whatever the pool size).

Below each size, one line per stage and per driver step between stages: seconds,
rows in and out, and the peak RSS, over the 0.1 s samples taken meanwhile, of the
tree, of its largest worker and of the driver (the `arena` process: client and
scheduler). Stage times come from the `started`/`finished` times of the manifests;
a driver step is the gap between two stages, named by what the flow does there
(the candidate draw, ...; the work stages of semantic dedup and K-means run inside their
stage's span). The
difficulty stage also says its judge, backend and seconds per 100 judgements.

The judge is `smollm2-difficulty-vllm` (vLLM; its tasks need GPU=1, which the
embedded cluster's first worker gets: one engine) unless `--difficulty-judge` names another entry of
the packaged judges roster (`recipe`: the recipe's own); `python -m bench.difficulty
--candidates OUT/candidates` rescores the same candidates with both judges in one run.
`--embed-model` overrides the recipe's embedder (e.g. static:builtin:all-minilm-l6-v2);
the child's log is kept beside the outputs (evalset-ROWS.log).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from bench.ingest_dedup import run
from bench.pools import TEXTS, write_pool

DEFAULT_JUDGE = "smollm2-difficulty-vllm"
GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument(
        "--recipe", default=str(Path(__file__).parent / "recipes" / "wizardarena_scale.yaml")
    )
    parser.add_argument("--texts", choices=TEXTS, default="fragments")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None, help="folder to keep outputs in (default: temp)")
    parser.add_argument(
        "--difficulty-judge",
        default=DEFAULT_JUDGE,
        help="judges roster entry (default: %(default)s; 'recipe': the recipe's)",
    )
    parser.add_argument("--embed-model", default=None, help="embedder (default: the recipe's)")
    args, extra = parser.parse_known_args()  # other flags go to build-evalset as they are
    root = Path(args.keep or tempfile.mkdtemp(prefix="evalset-scale-"))
    judge = (
        [] if args.difficulty_judge == "recipe" else ["--difficulty-judge", args.difficulty_judge]
    )
    embed = ["--embed-model", args.embed_model] if args.embed_model else []
    print(
        f"recipe {args.recipe} {' '.join([*judge, *embed, *extra])}; {args.texts} pool; "
        f"outputs in {root}",
        flush=True,
    )
    for rows in [int(s) for s in args.sizes.split(",")]:
        pool = write_pool(root / f"pool-{rows}.jsonl", rows, texts_from=args.texts)
        out = root / f"evalset-{rows}"
        samples: list[tuple[float, int, int, int]] = []
        seconds, peak, _ = run(
            [
                "build-evalset",
                "--pool",
                str(pool),
                "--out",
                str(out),
                "--recipe",
                args.recipe,
                "--workers",
                str(args.workers),
                *judge,
                *embed,
                *extra,
            ],
            samples=samples,
            log_path=root / f"evalset-{rows}.log",
        )
        sizes = {
            name: sum(pq.ParquetFile(p).metadata.num_rows for p in (out / name).glob("*.parquet"))
            for name in ("diverse", "hard", "mix")
        }
        print(f"{'rows':>9} {'seconds':>9} {'peak RSS GiB':>13} {'s per 100k':>11}  eval set")
        print(
            f"{rows:>9} {seconds:>9.1f} {peak / GIB:>13.2f} {seconds / rows * 1e5:>11.1f}  "
            f"diverse {sizes['diverse']}, hard {sizes['hard']}, mix {sizes['mix']}",
            flush=True,
        )
        for line in stage_lines(out, samples):
            print(f"{'':>9}   {line}", flush=True)


# The stage folders of one build in the order the flow runs them, and what the driver
# does between the previous stage's end and this one's start (no stage of its own).
STAGES = (
    ("pool", "ingest", "start: CLI, configs, embedded cluster"),
    ("dedup", "exact-dedup", "row count, exact-dedup shuffle stage"),
    ("embedded", "embed", "driver: recipe, judge roster"),
    ("semantic_dedup", "semantic-dedup", "semantic work stages (centroids, shuffle, pairs)"),
    ("clustered", "assign-clusters", "row count; K-means trains in its work stage"),
    ("draws", "draw-per-cluster", "driver: between stages"),
    ("drawn", "drawn-rows", "driver: between stages"),
    ("scored", "score-difficulty", "diverse set and candidates written (driver)"),
    ("map_sample", "map-sample", "models offloaded; hard and mix written (driver)"),
)
AFTER = "report (driver); cluster shutdown"


def peaks(samples, start: float, end: float) -> tuple[int, int, int]:
    """Peak (tree, largest worker, driver) RSS over the samples within [start, end]."""
    within = [s for s in samples if start <= s[0] <= end]
    if not within:  # a step shorter than the 0.1 s sampling: the nearest sample
        within = [min(samples, key=lambda s: abs(s[0] - start))]
    return (
        max(s[1] for s in within),
        max(s[3] for s in within),
        max(s[2] for s in within),
    )


def stage_lines(out: Path, samples) -> list[str]:
    """One line per stage (from the manifest the runner wrote: seconds, rows, start and end)
    and per driver step between stages: seconds and the peak RSS of the process tree, of
    the largest worker and of the driver over the samples taken meanwhile."""
    head = (
        f"{'step':<52} {'seconds':>8} {'rows in':>9} {'rows out':>9} "
        f"{'tree GiB':>9} {'worker':>7} {'driver':>7}"
    )
    lines = [head]

    def line(name, start, end, rows_in="", rows_out="", note=""):
        tree, worker, driver = peaks(samples, start, end)
        lines.append(
            f"{name:<52} {end - start:>8.1f} {rows_in:>9} {rows_out:>9} "
            f"{tree / GIB:>9.2f} {worker / GIB:>7.2f} {driver / GIB:>7.2f}{note}"
        )

    previous = samples[0][0]
    for folder, stage, before in STAGES:
        manifest = out / folder / "_manifest.json"
        if not manifest.exists():
            continue
        m = json.loads(manifest.read_text())
        if "started" not in m:  # written before manifests had their times
            lines.append(f"{stage} ({m['parts']} parts): {m['seconds']:.1f} s, no times")
            continue
        if m["started"] - previous >= 0.05:
            line(f"  {before}", previous, m["started"])
        note = ""
        if folder == "scored":
            judge = m["config"]["judge"]
            note = f"  {judge['name']} ({judge['backend']})"
            if m["rows_in"]:
                note += f": {m['seconds'] / m['rows_in'] * 100:.1f} s per 100 judgements"
        line(
            f"{stage} ({m['parts']} parts)",
            m["started"],
            m["finished"],
            m["rows_in"],
            m["rows_out"],
            note,
        )
        previous = m["finished"]
    line(f"  {AFTER}", previous, samples[-1][0])
    return lines


if __name__ == "__main__":
    main()
