"""Float32 vectors, on demand, for the rows whose reduced-precision cosine is too close to call.

Two kinds of reduced precision meet the semantic-dedup rule:
- Vectors embedded in bfloat16 agree with float32 ones to cosine >= 0.9999, but a pair's
  cosine still moves by up to ~0.0034 (measured on near-identical template prompts;
  ~0.001 on real prompts). Such a pair within `margin` of the threshold is decided on
  float32 vectors of both rows, embedded again from the rows' text (`embedded_again`).
- The clusters pass shuffles vectors as float16, which moves a cosine of unit vectors by
  at most 2 x 2^-11 (FLOAT16_ERROR); a pair that close is decided on the float32 vectors
  the pool holds, read back by (part, row) (`read_back`).
So the drop decisions are those of a float32 run while only the borderline rows pay. Vectors
are kept once made. Rows are keyed by whatever the caller's lookup takes: (part, row) of a
folder, or a row number of a table.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import prompt_text
from pipeline.evalset.embed import EmbedConfig, embed_texts, embedded_dtype, vectors_of

DEFAULT_MARGIN = 0.005  # about 1.5x the largest bfloat16 pair-cosine error measured
# |a16.b16 - a.b| <= |a16 - a| + |b16 - b| for unit a, b, and float16 rounds each
# element within 2^-11 of itself, so within 2^-11 in norm; rounded up for float32 sums.
FLOAT16_ERROR = 0.001

Row = tuple[int, int]  # (part number, row in part)
Compute = Callable[[list], np.ndarray]  # keys -> their float32 unit vectors, one a row


def needs_float32_look(part: Path, config: EmbedConfig) -> bool:
    """A part's vectors were made in reduced precision (its footer says, or without one the
    config does) and it holds the texts to embed again; vectors alone are taken as they are."""
    return (
        embedded_dtype(part, config.dtype) != "float32" and "messages" in pq.read_schema(part).names
    )


def part_texts(parts: list[Path]) -> Callable[[Row], str]:
    """The prompt text of (part, row) of a folder; texts are read per part file, a few parts
    at a time."""

    @lru_cache(maxsize=32)
    def texts(part: int) -> list[str]:
        messages = pq.read_table(parts[part], columns=["messages"]).column("messages")
        return [prompt_text(m) for m in messages.to_pylist()]

    return lambda row: texts(row[0])[row[1]]


def embedded_again(config: EmbedConfig, text_of: Callable[[Hashable], str]) -> Compute:
    """Float32 vectors embedded anew from each key's text."""
    config = replace(config, dtype="float32")
    return lambda keys: embed_texts([text_of(k) for k in keys], config)


def read_back(parts: Sequence[Path]) -> Compute:
    """The stored vectors of (part, row) keys, as float32: each part's row groups that hold
    asked-for rows are read once a call."""

    def compute(keys: list[Row]) -> np.ndarray:
        out = np.empty((len(keys), 0), np.float32)
        by_part: dict[int, list[int]] = {}
        for at, (part, _) in enumerate(keys):
            by_part.setdefault(part, []).append(at)
        for part, ats in by_part.items():
            file = pq.ParquetFile(parts[part])
            sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
            starts = np.cumsum([0, *sizes])
            rows = np.array([keys[a][1] for a in ats])
            group_of = np.searchsorted(starts, rows, side="right") - 1
            groups = np.unique(group_of)
            table = file.read_row_groups(groups.tolist(), columns=["embedding"])
            # where each group read begins in `table`, then each row's place in it
            begins = np.cumsum([0, *(starts[groups + 1] - starts[groups])[:-1]])
            local = begins[np.searchsorted(groups, group_of)] + rows - starts[group_of]
            vectors = vectors_of(table.take(pa.array(local, pa.int64())))
            if out.shape[1] == 0:
                out = np.empty((len(keys), vectors.shape[1]), np.float32)
            out[ats] = vectors
        return out

    return compute


class Float32Vectors:
    """Float32 unit vectors of rows, keyed as `compute` keys them."""

    def __init__(self, compute: Compute):
        self.compute = compute
        self.vectors: dict[Hashable, np.ndarray] = {}

    def ensure(self, rows: set) -> None:
        """Make, in one batch, the rows not made yet."""
        missing = sorted(rows - self.vectors.keys())
        if not missing:
            return
        for key, vector in zip(missing, self.compute(missing), strict=True):
            self.vectors[key] = vector

    def cosine(self, a: Hashable, b: Hashable) -> float:
        self.ensure({a, b})
        return float(self.vectors[a] @ self.vectors[b])

    @property
    def embedded(self) -> int:
        return len(self.vectors)
