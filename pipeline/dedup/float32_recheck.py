"""Float32 vectors, on demand, for the rows whose reduced-precision cosine is too close to call.

Vectors embedded in bfloat16 agree with float32 ones to cosine >= 0.9999, but a pair's
cosine still moves by up to ~0.0034 (measured on near-identical template prompts;
~0.001 on real prompts). A pair within `margin` of the semantic-dedup threshold is
therefore decided on float32 vectors of both rows, embedded again here from the rows'
text, so the drop decisions are those of a float32 run while only the borderline rows
pay for float32. Vectors are kept once made; texts are read per part file, a few parts
at a time.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from core.schemas import prompt_text
from pipeline.evalset.embed import EmbedConfig, embed_texts

DEFAULT_MARGIN = 0.005  # about 1.5x the largest bfloat16 pair-cosine error measured

Row = tuple[int, int]  # (part number, row in part)


class Float32Vectors:
    """Float32 unit vectors of rows of an embedded folder, keyed by (part, row)."""

    def __init__(self, parts: list[Path], config: EmbedConfig):
        self.parts = parts
        self.config = replace(config, dtype="float32")
        self.vectors: dict[Row, np.ndarray] = {}
        self._texts = lru_cache(maxsize=32)(self._part_texts)

    def _part_texts(self, part: int) -> list[str]:
        messages = pq.read_table(self.parts[part], columns=["messages"]).column("messages")
        return [prompt_text(m) for m in messages.to_pylist()]

    def ensure(self, rows: set[Row]) -> None:
        """Embed, in one batch, the rows not embedded yet."""
        missing = sorted(rows - self.vectors.keys())
        if not missing:
            return
        texts = [self._texts(part)[row] for part, row in missing]
        for key, vector in zip(missing, embed_texts(texts, self.config), strict=True):
            self.vectors[key] = vector

    def cosine(self, a: Row, b: Row) -> float:
        self.ensure({a, b})
        return float(self.vectors[a] @ self.vectors[b])

    @property
    def embedded(self) -> int:
        return len(self.vectors)
