"""Semantic dedup's kept-vector search: exact (flat) against IVF, on the same vectors.

    python -m bench.semantic_search [--rows 100000] [--texts fragments] [--nprobe 16]
    python -m bench.semantic_search --embedded OUT/embedded   # e.g. a kept evalset_scale run
    python -m bench.semantic_search --rows 50000 --copies 8    # 8x the rows, embedded once

Embeds the distinct texts of a generated pool (bench.pools) with MiniLM in bfloat16 into
parts of 1,000 rows, as build-evalset's embed stage writes them, or reads an embedded
folder; then runs semantic_dedup at the default threshold with the exact search and with
IVF over the same parts, and prints seconds, the speed-up, rows dropped, and the share of
rows whose drop decision agrees (the float32 re-check is off in both: it is the same
work for either search and would hide the search's own cost). `--copies K` times the
search at K times the rows without embedding them: copy c of every part is the vectors
under a random rotation of its own, so each copy keeps the pool's neighbourhoods (the
same rows go) while copies are strangers to each other (cosines near 0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PART_ROWS = 1_000


def embed_pool(folder: Path, rows: int, texts_from: str) -> Path:
    from bench.pools import pool_texts
    from core.parquet_io import write_parquet_atomic
    from pipeline.evalset.embed import EmbedConfig, embed_texts

    texts = list(
        dict.fromkeys(t for t, repeated in pool_texts(rows, texts_from=texts_from) if not repeated)
    )
    start = time.perf_counter()
    vectors = embed_texts(texts, EmbedConfig())
    print(
        f"embedded {len(texts)} distinct texts in {time.perf_counter() - start:.0f} s", flush=True
    )
    for k, first in enumerate(range(0, len(texts), PART_ROWS)):
        chunk = vectors[first : first + PART_ROWS].astype(np.float32)
        table = pa.table(
            {
                "prompt_id": [f"p{i:09d}" for i in range(first, first + len(chunk))],
                "embedding": pa.FixedSizeListArray.from_arrays(
                    pa.array(chunk.ravel()), chunk.shape[1]
                ),
            }
        )
        write_parquet_atomic(table, folder / f"part-{k:05d}.parquet")
    return folder


def rotated_copies(embedded: Path, copies: int, out: Path) -> Path:
    from core.parquet_io import part_files, write_parquet_atomic
    from pipeline.evalset.embed import vectors_of

    rng = np.random.default_rng(0)
    parts = part_files(embedded)
    for copy in range(copies):
        rotation = None
        for k, path in enumerate(parts):
            table = pq.read_table(path, columns=["prompt_id", "embedding"])
            vectors = vectors_of(table)
            if rotation is None:
                dim = vectors.shape[1]
                rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
            moved = np.ascontiguousarray(vectors @ rotation if copy else vectors)
            column = pa.FixedSizeListArray.from_arrays(pa.array(moved.ravel()), moved.shape[1])
            ids = pa.array([f"{i}-{copy}" for i in table.column("prompt_id").to_pylist()])
            write_parquet_atomic(
                pa.table({"prompt_id": ids, "embedding": column}),
                out / f"part-{copy * len(parts) + k:06d}.parquet",
            )
    return out


def main() -> None:
    from bench.pools import TEXTS
    from core.parquet_io import part_files
    from pipeline.dedup.kept_index import DEFAULT_NPROBE
    from pipeline.dedup.semantic import DEFAULT_THRESHOLD, semantic_dedup

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--texts", choices=TEXTS, default="fragments")
    parser.add_argument("--embedded", help="an embedded folder to read instead of embedding")
    parser.add_argument("--nprobe", type=int, default=DEFAULT_NPROBE)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--copies", type=int, default=1, help="rotated copies of the vectors")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-semantic-"))
    if args.embedded:
        embedded = Path(args.embedded)
    else:
        embedded = embed_pool(root / "embedded", args.rows, args.texts)
    if args.copies > 1:
        embedded = rotated_copies(embedded, args.copies, root / "copies")
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(embedded))
    print(f"{rows} rows in {len(part_files(embedded))} parts; threshold {args.threshold}")

    dropped, seconds = {}, {}
    for search in ("exact", "ivf"):
        start = time.perf_counter()
        dropped[search] = semantic_dedup(
            embedded, threshold=args.threshold, progress=False, search=search, nprobe=args.nprobe
        )
        seconds[search] = time.perf_counter() - start
        print(
            f"{search:>6}: {seconds[search]:8.1f} s, {len(dropped[search])} rows dropped",
            flush=True,
        )
    differ = len(dropped["exact"] ^ dropped["ivf"])
    print(
        f"IVF (nprobe {args.nprobe}) {seconds['exact'] / seconds['ivf']:.1f}x the exact search; "
        f"decisions agree on {100 * (1 - differ / rows):.3f}% of rows "
        f"({len(dropped['exact'] - dropped['ivf'])} duplicates kept, "
        f"{len(dropped['ivf'] - dropped['exact'])} extra drops)"
    )


if __name__ == "__main__":
    main()
