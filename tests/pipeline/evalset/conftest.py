"""Shared inputs of the eval-set stage tests."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def clustered_pool(folder: Path, part_rows: tuple[int, ...], clusters: int, dim: int = 4) -> Path:
    """A synthetic OUT/clustered (no model): parts of `part_rows` rows (ids prompt-N in pool
    order), skewed cluster sizes (cluster 0 about half the rows, the last few a handful)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    start = 0
    for number, rows in enumerate(part_rows):
        ids = [f"prompt-{start + i}" for i in range(rows)]
        cluster = np.minimum(rng.geometric(0.45, rows) - 1, clusters - 1).astype(np.int32)
        vectors = rng.normal(size=(rows, dim)).astype(np.float32)
        table = pa.table(
            {
                "prompt_id": ids,
                "messages": [[{"role": "user", "content": f"question {i}"}] for i in ids],
                "source": [f"src-{i % 3}" for i in range(rows)],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
                "cluster": pa.array(cluster),
                "cluster_similarity": pa.array(rng.random(rows).astype(np.float32)),
            }
        )
        pq.write_table(table, folder / f"part-{number:05d}-0000.parquet")
        start += rows
    return folder
