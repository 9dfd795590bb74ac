"""The index of kept vectors that semantic dedup searches: exact, or inverted-file (IVF).

An exact (flat) index compares every new row with every kept row, so a pass costs the
square of the pool: fine at 100k rows, hours at 10M. An IVF index splits the sphere into
`lists` cells (spherical K-means on a sample spread over the folder) and compares a row
only with the kept rows of its `nprobe` nearest cells, so a pass grows about linearly.
A near duplicate (cosine >= 0.9 is a distance <= 0.45 between unit vectors) sits in one
of a row's nearest cells nearly always; bench.semantic_search measures how often the
drop decisions agree with the exact search. "auto" is exact below IVF_FROM_ROWS rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from core.errors import UserError
from pipeline.evalset.embed import vectors_of

SEARCHES = ("auto", "exact", "ivf")
IVF_FROM_ROWS = 100_000
DEFAULT_NPROBE = 16
SAMPLE_PER_LIST = 40  # FAISS's K-means warns below 39 training points per centroid


def ivf_lists(rows: int) -> int:
    """Cells for a pool of `rows`: ~2 sqrt(rows), so a cell holds ~sqrt(rows) / 2 rows."""
    return int(min(4096, max(16, 2 * math.sqrt(rows))))


def uses_ivf(search: str, rows: int) -> bool:
    if search not in SEARCHES:
        raise UserError(f"semantic search {search!r}: expected one of {SEARCHES}")
    return search == "ivf" or (search == "auto" and rows >= IVF_FROM_ROWS)


def training_sample(parts: list[Path], rows: int, wanted: int) -> np.ndarray:
    """About `wanted` vectors: every row of every k-th part when parts are many, every k-th
    row of every part when they are few. Deterministic and spread over the folder (pools are
    often concatenated source by source, so the first parts alone would not do)."""
    step = max(1, math.ceil(rows / max(wanted, 1)))
    part_step = max(1, min(step, len(parts) // 16))
    row_step = max(1, step // part_step)
    chunks = [
        vectors_of(pq.read_table(path, columns=["embedding"]))[::row_step]
        for path in parts[::part_step]
    ]
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


def new_kept_index(parts: list[Path], dim: int, search: str, nprobe: int, seed: int = 0):
    """An empty FAISS inner-product index for the kept vectors of `parts`, trained if IVF."""
    import faiss

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    if not uses_ivf(search, rows):
        return faiss.IndexFlatIP(dim)
    if nprobe < 1:
        raise UserError(f"semantic nprobe {nprobe}: expected a positive number of cells")
    lists = ivf_lists(rows)
    sample = training_sample(parts, rows, SAMPLE_PER_LIST * lists)
    if len(sample) < 2 * SAMPLE_PER_LIST:  # too few rows to split into cells
        return faiss.IndexFlatIP(dim)
    lists = min(lists, len(sample) // SAMPLE_PER_LIST)
    kmeans = faiss.Kmeans(dim, lists, niter=10, spherical=True, seed=seed, verbose=False)
    kmeans.train(sample)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(kmeans.centroids)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = min(nprobe, lists)
    return index  # trained: its quantizer holds `lists` centroids
