"""Embedding throughput of the eval-set pipeline against plain float32 encode.

Run: .venv/bin/python -m bench.evalset --rows 20000 [--texts real] [--dtype bfloat16]
Generates short instruction-like texts (or cycles real prompts), embeds them
with a plain `SentenceTransformer.encode` in float32 (the baseline, torch's
threads on every core), with pipeline.evalset.embed in `--dtype` (auto: bfloat16 where
the hardware has it, else float32) in the same process, and through the
EmbedConversations stage on the embedded LocalCluster (how `arena
build-evalset` embeds), in the same run. Prints rows/s, speed-ups, the
worst cosine between a row's float32 vector and either pipeline one, how often
the semantic dedup flag (any other row at or above the threshold) agrees, and how
often the greedy semantic dedup that build-evalset runs makes the same drop
decision as on float32 vectors, with and without its float32 re-check of pairs
near the threshold.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

VERBS = ["Write", "Explain", "Summarise", "List", "Compare", "Describe", "Translate", "Plan"]
TOPICS = [
    "the water cycle",
    "a binary search tree",
    "the French revolution",
    "a vegan dinner",
    "compound interest",
    "a job interview",
    "photosynthesis",
    "a REST API",
    "black holes",
    "a birthday poem",
    "climate policy",
    "the rules of chess",
    "a marketing email",
]
TAILS = [
    "for a child",
    "in three bullet points",
    "with an example",
    "in under 100 words",
    "step by step",
    "for a beginner",
    "in a formal tone",
    "",
]


def generate(rows: int, seed: int = 0) -> list[str]:
    """Short prompts built from templates, with a serial number so rows differ."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(TAILS)} (case {i})".strip()
        for i in range(rows)
    ]


def real_prompts(rows: int) -> list[str]:
    """First user turns of the real prompts in ../shared/data/prompts, cycled to `rows`
    with a serial number: real lengths (median ~40 words, long tails of code and essays)."""
    from bench.pools import real_prompt_texts

    texts = real_prompt_texts()
    return [f"{texts[i % len(texts)]} (case {i})" for i in range(rows)]


def stage_vectors(texts: list[str], config, workers: int) -> tuple[np.ndarray, float, Path]:
    """The texts through the EmbedConversations stage on an embedded LocalCluster (workers
    x 1 thread, as `arena build-evalset` runs it): vectors in input order, seconds (timed
    after a warm-up stage has loaded the model on every worker) and the output folder."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.runner import run_stage
    from jobs.cluster import add_cluster_arguments, connect
    from pipeline.evalset.embed import EmbedConversations, vectors_of

    root = Path(tempfile.mkdtemp(prefix="bench-embed-"))

    def pool(name: str, rows: list[str]) -> Path:
        folder = root / name
        folder.mkdir()
        table = pa.table(
            {
                "prompt_id": [f"p{i:09d}" for i in range(len(rows))],
                "messages": [[{"role": "user", "content": t}] for t in rows],
            }
        )
        pq.write_table(table, folder / "part-00000.parquet")
        return folder

    parser = argparse.ArgumentParser()
    add_cluster_arguments(parser)
    args = parser.parse_args(["--workers", str(workers)])
    with connect(args) as client:
        warm = pool("warm", texts[: 64 * workers])
        run_stage(EmbedConversations(warm, root / "warm-out", config), client, progress=False)
        source = pool("pool", texts)
        start = time.perf_counter()
        run_stage(EmbedConversations(source, root / "out", config), client, progress=False)
        seconds = time.perf_counter() - start
    table = pq.read_table(root / "out", columns=["prompt_id", "embedding"]).sort_by("prompt_id")
    return vectors_of(table), seconds, root / "out"


def with_vectors(embedded: Path, vectors: np.ndarray, out: Path) -> Path:
    """A copy of an embedded folder (same parts, same row order) holding `vectors` instead,
    row i of `vectors` being prompt p{i:09d}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.parquet_io import part_files

    out.mkdir()
    for path in part_files(embedded):
        table = pq.read_table(path)
        rows = [int(i[1:]) for i in table.column("prompt_id").to_pylist()]
        column = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors[rows].ravel()), vectors.shape[1]
        )
        pq.write_table(
            table.drop_columns(["embedding"]).append_column("embedding", column), out / path.name
        )
    return out


def greedy_agreement(embedded: Path, base: np.ndarray, config, threshold: float) -> dict:
    """Semantic dedup as build-evalset runs it (greedy, first row kept) on the stage's
    bfloat16 folder, with and without the float32 re-check of borderline pairs, against the
    same parts holding float32 vectors: share of rows whose drop decision agrees."""
    from pipeline.dedup.semantic import semantic_dedup

    rows = len(base)
    full = semantic_dedup(
        with_vectors(embedded, base, embedded.parent / "float32"),
        threshold=threshold,
        progress=False,
    )
    plain = semantic_dedup(embedded, threshold=threshold, progress=False)
    start = time.perf_counter()
    report = embedded.parent / "recheck"
    rechecked = semantic_dedup(
        embedded, report, threshold=threshold, progress=False, recheck=config
    )
    seconds = time.perf_counter() - start
    summary = json.loads((report / "summary.json").read_text())
    return {
        "plain": 1 - len(full ^ plain) / rows,
        "rechecked": 1 - len(full ^ rechecked) / rows,
        "float32_rows": summary["float32_rows"],
        "seconds": seconds,
    }


def dedup_flags(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """True where some other row is at least `threshold` similar."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, _ = index.search(vectors, 2)
    return scores[:, 1] >= threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2, help="embedded cluster workers")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument(
        "--texts",
        choices=["templates", "real"],
        default="templates",
        help="templates: short generated prompts; real: real prompts cycled (real lengths)",
    )
    parser.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32"],
        default="auto",
        help="the pipeline's dtype (auto: bfloat16 where the hardware has it natively)",
    )
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    from arena_models.local_models import resolve_model_path
    from pipeline.evalset.embed import EmbedConfig, embed_texts, load_encoder, resolved_dtype

    texts = generate(args.rows) if args.texts == "templates" else real_prompts(args.rows)
    config = EmbedConfig(dtype=args.dtype)
    dtype = resolved_dtype(args.dtype)
    model_path = resolve_model_path(config.model)
    import os

    import torch

    # The baselines use every core through torch's threads, as a plain script would.
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    baseline = SentenceTransformer(model_path, device="cpu", trust_remote_code=False)
    baseline.encode(texts[:64])
    start = time.perf_counter()
    base = baseline.encode(texts, normalize_embeddings=True).astype(np.float32)
    base_s = time.perf_counter() - start
    load_encoder(config.model, config.dtype, config.max_seq_length)
    embed_texts(texts[:64], config)
    start = time.perf_counter()
    fast = embed_texts(texts, config)
    fast_s = time.perf_counter() - start
    staged, stage_s, staged_dir = stage_vectors(texts, config, args.workers)
    greedy = greedy_agreement(staged_dir, base, config, args.threshold)
    cosine = np.minimum(np.sum(base * fast, axis=1), np.sum(base * staged, axis=1))
    # Agreement over distinct texts: cycled copies of a real prompt are trivially duplicates.
    distinct = (
        slice(None)
        if args.texts == "templates"
        else slice(0, len(set(t.rsplit(" (case", 1)[0] for t in texts)))
    )
    flags = dedup_flags(base[distinct], args.threshold)
    agree = min(
        np.mean(flags == dedup_flags(vectors[distinct], args.threshold))
        for vectors in (fast, staged)
    )
    print(f"rows {args.rows}; pipeline dtype {args.dtype} -> {dtype}")
    print(f"float32 encode   {args.rows / base_s:10.1f} rows/s ({base_s:.1f} s)")
    print(f"{dtype:<9}encode   {args.rows / fast_s:10.1f} rows/s ({fast_s:.1f} s)")
    print(f"  speed-up       {base_s / fast_s:10.2f}x")
    print(
        f"pipeline stage   {args.rows / stage_s:10.1f} rows/s ({stage_s:.1f} s; {dtype}, "
        f"{args.workers} workers x 1 thread)"
    )
    print(f"  speed-up       {base_s / stage_s:10.2f}x")
    print(f"min cosine       {cosine.min():10.4f}")
    print(f"dedup agreement  {agree * 100:10.3f}% at threshold {args.threshold} (any neighbour)")
    print(
        f"greedy dedup     {greedy['plain'] * 100:10.3f}% of rows agree ({dtype} alone); "
        f"{greedy['rechecked'] * 100:.3f}% with the float32 re-check, which embedded "
        f"{greedy['float32_rows']} rows again ({greedy['seconds']:.1f} s)"
    )


if __name__ == "__main__":
    main()
