"""Hard-set difficulty scoring: the transformers scorer against a vLLM judge, same run.

    python -m bench.difficulty [--rows 200] [--candidates OUT/candidates]
        [--judges smollm2-difficulty,smollm2-difficulty-vllm] [--workers N]

Takes `--rows` real prompts (a fixed sample of the distinct first user turns in
../shared/data/prompts, written as candidate parts of 16 rows, as build-evalset
writes them) or the rows of an eval-set build's candidates folder, and scores them
with each judge of the packaged `judges` roster through the ScoreDifficulty stage
on the embedded LocalCluster (every worker holds GPU=1, as build-evalset gives
them for a vLLM judge). Per judge it prints the model load on every worker (with a
one-prompt warm-up, off the clock of scoring), the scoring seconds, seconds per 100
judgements, and the ratio to the first judge; then how the scores agree with the
first judge's (mean and max |difference|, Spearman).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

PART_ROWS = 16  # build-evalset's candidate parts


def write_candidates(folder: Path, rows: int) -> Path:
    import pyarrow as pa

    from bench.pools import real_prompt_texts
    from core.parquet_io import write_parquet_atomic
    from core.schemas import CONVERSATION, prompt_id

    texts = random.Random(0).sample(real_prompt_texts(), rows)
    for k, start in enumerate(range(0, rows, PART_ROWS)):
        messages = [[{"role": "user", "content": t}] for t in texts[start : start + PART_ROWS]]
        columns = {name: [None] * len(messages) for name in CONVERSATION.names}
        columns.update(prompt_id=[prompt_id(m) for m in messages], messages=messages)
        write_parquet_atomic(
            pa.table(columns, schema=CONVERSATION), folder / f"part-{k:05d}.parquet"
        )
    return folder


def _warm(spec) -> float:
    """Load the judge on this worker and score one prompt; seconds taken."""
    from arena_models.difficulty import DifficultyScorer
    from arena_models.roster import make_backend

    start = time.perf_counter()
    DifficultyScorer(make_backend(spec), mode="expected").score(["Warm-up: say hello."])
    return time.perf_counter() - start


def main() -> None:
    import pandas as pd
    from scipy.stats import spearmanr

    from arena_models.roster import load_roster, pick_model
    from core.runner import run_stage
    from jobs.cluster import connect
    from pipeline.evalset.difficulty import DifficultyConfig, ScoreDifficulty

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--candidates", default=None, help="an eval-set build's candidates")
    parser.add_argument("--judges", default="smollm2-difficulty,smollm2-difficulty-vllm")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--keep", default=None, help="folder to keep outputs in (default: temp)")
    args = parser.parse_args()
    roster = load_roster("judges")
    judges = [pick_model(roster, n, "--judges") for n in args.judges.split(",")]
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-difficulty-"))
    candidates = (
        Path(args.candidates)
        if args.candidates
        else write_candidates(root / "candidates", args.rows)
    )
    cluster = argparse.Namespace(
        scheduler_address=None,
        scheduler_file=None,
        workers=args.workers,
        threads_per_worker=1,
        memory_limit="auto",
        worker_resources="GPU=1",
    )
    scores, lines = {}, []
    with connect(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        print(f"{len(workers)} workers; candidates {candidates}; outputs in {root}", flush=True)
        for spec in judges:
            start = time.perf_counter()
            loads = client.gather(
                [
                    client.submit(
                        _warm, spec, workers=[w], resources=spec.resources or None, pure=False
                    )
                    for w in workers
                ]
            )
            load = time.perf_counter() - start
            stage = ScoreDifficulty(candidates, root / spec.name, DifficultyConfig(judge=spec))
            start = time.perf_counter()
            manifest = run_stage(stage, client, overwrite=True, progress=False)
            seconds = time.perf_counter() - start
            frame = pd.read_parquet(root / spec.name, columns=["prompt_id", "difficulty"])
            scores[spec.name] = frame.set_index("prompt_id").difficulty
            rows = manifest["rows_in"]
            lines.append((spec.name, spec.backend, load, seconds, rows, manifest["rows_rejected"]))
            each = ", ".join(f"{s:.0f}" for s in loads)
            print(
                f"  {spec.name}: loaded in {load:.0f} s (workers: {each} s), scored {rows}"
                f" in {seconds:.1f} s",
                flush=True,
            )
    base = lines[0][3] / lines[0][4] * 100
    print(
        f"\n{'judge':<26} {'backend':<13} {'load s':>7} {'score s':>8} {'s/100':>7}"
        f" {'speed-up':>8} {'errors':>6}"
    )
    for name, backend, load, seconds, rows, errors in lines:
        per = seconds / rows * 100
        print(
            f"{name:<26} {backend:<13} {load:>7.0f} {seconds:>8.1f} {per:>7.1f}"
            f" {base / per:>7.2f}x {errors:>6}"
        )
    first = scores[judges[0].name]
    for spec in judges[1:]:
        both = pd.concat([first, scores[spec.name]], axis=1, join="inner").dropna()
        diff = (both.iloc[:, 0] - both.iloc[:, 1]).abs()
        rho = spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic
        print(
            f"{spec.name} vs {judges[0].name} on {len(both)} rows: mean |diff| "
            f"{diff.mean():.5f}, max {diff.max():.5f}, Spearman {rho:.4f}"
        )


if __name__ == "__main__":
    main()
