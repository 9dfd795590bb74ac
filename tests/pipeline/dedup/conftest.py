"""Embedded folders for the semantic dedup tests: parts with ids, messages and vectors."""

import pyarrow as pa
import pytest

from core.parquet_io import write_parquet_atomic


def _write_parts(folder, texts, vectors, parts=3):
    per = -(-len(texts) // parts)
    for k, start in enumerate(range(0, len(texts), per)):
        rows = range(start, min(len(texts), start + per))
        table = pa.table(
            {
                "prompt_id": [f"p{i:05d}" for i in rows],
                "messages": [[{"role": "user", "content": texts[i]}] for i in rows],
                "embedding": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors[start : start + per].ravel()), vectors.shape[1]
                ),
            }
        )
        write_parquet_atomic(table, folder / f"part-{k}.parquet")
    return folder


@pytest.fixture(scope="session")
def write_embedded_parts():
    """write(folder, texts, vectors, parts=3) -> folder: `parts` Parquet parts in order."""
    return _write_parts
