"""Shared inputs of the eval-set stage tests."""

from pathlib import Path

import pyarrow as pa

from core.parquet_io import write_parquet_atomic
from core.stage import Task

NEAR_TWINS = ["Write a poem about the sea.", "Write a poem about the sea!", "What is 2 + 2?"]


def one_part_pool(folder: Path, texts: list[str] = NEAR_TWINS) -> Task:
    """A conversation pool of one part (ids a, b, c, ...) and the embed task that covers it."""
    ids = [chr(ord("a") + i) for i in range(len(texts))]
    messages = [[{"role": "user", "content": t}] for t in texts]
    write_parquet_atomic(
        pa.table({"prompt_id": ids, "messages": messages}), folder / "part-0.parquet"
    )
    return Task("part-0-0000", {"path": str(folder / "part-0.parquet"), "start": 0, "rows": 9})
