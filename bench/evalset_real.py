"""The full-size WizardArena build on every real prompt of ../shared/data/prompts, on one
worker and on N workers of an embedded LocalCluster, same run.

    python -m bench.evalset_real [--clusters 50] [--hard-top 10] [--workers 2]

The CI test (tests/pipeline/evalset/test_build_evalset.py) checks the same build on 179
prompts in 6 clusters; this is its full size: ingest, exact dedup, MiniLM embeddings,
FAISS K-means, Diverse, Hard (SmolLM2 difficulty scores), Mix. Per cluster shape it
prints wall time per stage, the N-worker speed-up over one worker, the Diverse cluster
coverage, the Hard score range, and whether both builds chose the same rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SHARED_PROMPTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"


def build(root: Path, workers: int, recipe) -> tuple[float, dict[str, float], Path]:
    """Ingest, dedup and build on a fresh `workers`-worker LocalCluster; returns (wall
    seconds, seconds per stage from the manifests, the build folder)."""
    from dask.distributed import Client, LocalCluster

    from pipeline.flows.dedup import run_exact_dedup
    from pipeline.flows.evalset import build_from_deduped
    from pipeline.flows.ingest import ingest, pool_files

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        ingest(client, pool_files([SHARED_PROMPTS]), root / "pool")
        run_exact_dedup(client, root / "pool", root / "dedup")
        build_from_deduped(client, root / "dedup", root / "built", recipe)
    wall = time.perf_counter() - started
    stages = {}
    for manifest in sorted(root.rglob("_manifest.json")):
        record = json.loads(manifest.read_text())
        if "started" in record and "finished" in record:
            name = str(manifest.parent.relative_to(root))
            stages[name] = record["finished"] - record["started"]
    return wall, stages, root / "built"


def chosen(built: Path) -> dict[str, set[str]]:
    import pandas as pd

    return {s: set(pd.read_parquet(built / s).prompt_id) for s in ("diverse", "hard", "mix")}


def main() -> None:
    import pandas as pd

    from pipeline.flows.evalset import Recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--hard-top", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    recipe = Recipe(
        clusters=args.clusters,
        diverse_per_cluster=2,
        hard_candidates_per_cluster=1,
        hard_top=args.hard_top,
        seed=7,
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in sorted({1, args.workers}):
            wall, stages, built = build(Path(tmp) / f"w{workers}", workers, recipe)
            results[workers] = wall, stages, chosen(built)
            print(f"\n{workers} worker(s): {wall:.1f} s")
            for name, seconds in stages.items():
                print(f"  {name:<28} {seconds:8.1f} s")
            if workers == 1:
                diverse = pd.read_parquet(built / "diverse")
                hard = pd.read_parquet(built / "hard")
                print(
                    f"  diverse: {len(diverse)} rows from {diverse.cluster.nunique()} of "
                    f"{args.clusters} clusters; hard: {len(hard)} rows, difficulty "
                    f"{hard.difficulty.min():.2f}-{hard.difficulty.max():.2f}"
                )
    one, many = results[1], results[args.workers]
    print(f"\nspeed-up of {args.workers} workers over 1: {one[0] / many[0]:.2f}x")
    same = {s: one[2][s] == many[2][s] for s in one[2]}
    print("same rows on 1 and", args.workers, "workers:", same)


if __name__ == "__main__":
    main()
