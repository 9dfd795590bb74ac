"""The whole WizardArena build at growing pool sizes, on the embedded cluster.

    python -m bench.evalset_scale [--sizes 100000,300000,1000000] [--texts fragments]
        [--recipe bench/recipes/wizardarena_scale.yaml] [--difficulty-judge NAME]

For each size it generates a pool (bench.pools: every input shape, 10% exact
duplicates; `fragments`: spans of real prompts with 5% light edits, or
`templates`: near twins of 720 templates), runs `arena build-evalset` (ingest, exact dedup, MiniLM embedding on
the workers, semantic dedup, FAISS K-means, Diverse, Hard candidates scored by
the SmolLM2 judge, Mix) as a separate process, and prints wall time, peak RSS of
the whole process tree (client, scheduler, workers) and seconds per 100k rows,
so the growth with size can be read off (the judge's share is fixed by the
recipe: clusters x candidates, whatever the pool size). Below each size, one line per
stage gives its seconds from the stage's manifest, and the difficulty stage its seconds
per 100 judgements (`--difficulty-judge`: any entry of the packaged judges roster, e.g.
smollm2-difficulty-vllm; `python -m bench.difficulty --candidates OUT/candidates`
rescores the same candidates with both judges in one run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from bench.ingest_dedup import run
from bench.pools import TEXTS, write_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument(
        "--recipe", default=str(Path(__file__).parent / "recipes" / "wizardarena_scale.yaml")
    )
    parser.add_argument("--texts", choices=TEXTS, default="fragments")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None, help="folder to keep outputs in (default: temp)")
    parser.add_argument(
        "--difficulty-judge", default=None, help="judges roster entry (default: the recipe's)"
    )
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="evalset-scale-"))
    print(f"recipe {args.recipe}; {args.texts} pool; outputs in {root}", flush=True)
    print(f"{'rows':>9} {'seconds':>9} {'peak RSS GiB':>13} {'s per 100k':>11}  eval set")
    for rows in [int(s) for s in args.sizes.split(",")]:
        pool = write_pool(root / f"pool-{rows}.jsonl", rows, texts_from=args.texts)
        out = root / f"evalset-{rows}"
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
                *(["--difficulty-judge", args.difficulty_judge] if args.difficulty_judge else []),
            ]
        )
        sizes = {
            name: sum(pq.ParquetFile(p).metadata.num_rows for p in (out / name).glob("*.parquet"))
            for name in ("diverse", "hard", "mix")
        }
        print(
            f"{rows:>9} {seconds:>9.1f} {peak / 2**30:>13.2f} {seconds / rows * 1e5:>11.1f}  "
            f"diverse {sizes['diverse']}, hard {sizes['hard']}, mix {sizes['mix']}",
            flush=True,
        )
        for line in stage_lines(out):
            print(f"{'':>9}   {line}", flush=True)


STAGES = ("pool", "dedup", "embedded", "semantic_dedup", "clustered", "scored")


def stage_lines(out: Path) -> list[str]:
    """Seconds per stage folder of one build, from the manifests the runner wrote."""
    lines = []
    for name in STAGES:
        manifest = out / name / "_manifest.json"
        if not manifest.exists():
            continue
        m = json.loads(manifest.read_text())
        line = f"{name:<15} {m['seconds']:>8.1f} s  {m['rows_out']:>9} rows out"
        if name == "scored" and m["rows_in"]:
            line += f"  ({m['seconds'] / m['rows_in'] * 100:.1f} s per 100 judgements)"
        lines.append(line)
    return lines


if __name__ == "__main__":
    main()
