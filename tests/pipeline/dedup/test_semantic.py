"""Semantic dedup on real MiniLM vectors across two Parquet parts."""

import numpy as np
import pandas as pd
import pyarrow as pa

from core.parquet_io import write_parquet_atomic
from pipeline.dedup.semantic import semantic_dedup
from pipeline.evalset.embed import EmbedConfig, embed_texts


def _part(path, ids, vectors):
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    write_parquet_atomic(pa.table({"prompt_id": ids, "embedding": column}), path)


def test_paraphrases_dropped_across_parts(tmp_path):
    texts = [
        "Write a short poem about the sea at night.",
        "Explain how a hash table handles collisions.",
        "Write a short poem about the sea at night!",  # same part as its original
        "Explain how a hash table handles collisions?",  # next part
        "What is the capital city of Australia?",
    ]
    vectors = embed_texts(texts, EmbedConfig()).astype(np.float32)
    ids = [f"p{i}" for i in range(len(texts))]
    embedded = tmp_path / "embedded"
    _part(embedded / "part-0.parquet", ids[:3], vectors[:3])
    _part(embedded / "part-1.parquet", ids[3:], vectors[3:])
    drop = semantic_dedup(embedded, out_dir=tmp_path / "report", threshold=0.95, progress=False)
    assert drop == {"p2", "p3"}
    pairs = pd.read_parquet(tmp_path / "report" / "pairs.parquet").set_index("prompt_id")
    assert pairs.loc["p2", "duplicate_of"] == "p0"
    assert pairs.loc["p3", "duplicate_of"] == "p1"
    assert (pairs["similarity"] >= 0.95).all()
