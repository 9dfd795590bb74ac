"""Float32 vectors, on demand, for the rows whose reduced-precision cosine is too close to call.

Vectors embedded in bfloat16 agree with float32 ones to cosine >= 0.9999, but a pair's
cosine still moves by up to ~0.0034 (measured on near-identical template prompts;
~0.001 on real prompts). A pair within `margin` of the semantic-dedup threshold is
therefore decided on float32 vectors of both rows, embedded again here from the rows'
text, so the drop decisions are those of a float32 run while only the borderline rows
pay for float32. Vectors are kept once made. Rows are keyed by whatever the caller's
`text_of` takes: (part, row) of a folder (`part_texts`), or a row number of a table.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from core.schemas import prompt_text
from pipeline.evalset.embed import EmbedConfig, embed_texts, embedded_dtype

DEFAULT_MARGIN = 0.005  # about 1.5x the largest bfloat16 pair-cosine error measured

Row = tuple[int, int]  # (part number, row in part)


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


class Float32Vectors:
    """Float32 unit vectors of rows, keyed as `text_of` keys them."""

    def __init__(self, config: EmbedConfig, text_of: Callable[[Hashable], str]):
        self.config = replace(config, dtype="float32")
        self.text_of = text_of
        self.vectors: dict[Hashable, np.ndarray] = {}

    def ensure(self, rows: set) -> None:
        """Embed, in one batch, the rows not embedded yet."""
        missing = sorted(rows - self.vectors.keys())
        if not missing:
            return
        texts = [self.text_of(row) for row in missing]
        for key, vector in zip(missing, embed_texts(texts, self.config), strict=True):
            self.vectors[key] = vector

    def cosine(self, a: Hashable, b: Hashable) -> float:
        self.ensure({a, b})
        return float(self.vectors[a] @ self.vectors[b])

    @property
    def embedded(self) -> int:
        return len(self.vectors)
