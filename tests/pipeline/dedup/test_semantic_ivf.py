"""Semantic dedup over an IVF index of the kept vectors agrees with the exact search."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.pools import pool_texts
from core.errors import UserError
from pipeline.dedup.kept_index import training_sample
from pipeline.dedup.semantic import SemanticDedupConfig, semantic_dedup
from pipeline.evalset.embed import EmbedConfig, embed_texts


@pytest.fixture(scope="module")
def pool(tmp_path_factory, write_embedded_parts):
    """2,000 distinct instructions cut from real prompts, 5% of them light edits of earlier
    ones, embedded by MiniLM in bfloat16, in 8 parts."""
    texts = list(dict.fromkeys(t for t, rep in pool_texts(2100, texts_from="fragments") if not rep))
    texts = texts[:2000]
    vectors = embed_texts(texts, EmbedConfig()).astype(np.float32)
    return write_embedded_parts(
        tmp_path_factory.mktemp("ivf") / "embedded", texts, vectors, parts=8
    )


def _dedup(pool, out, **search):
    dropped = semantic_dedup(pool, out, threshold=0.95, progress=False, **search)
    summary = json.loads((out / "summary.json").read_text())
    return dropped, pd.read_parquet(out / "pairs.parquet"), summary


def test_ivf_probing_every_cell_is_the_exact_search(pool, tmp_path):
    exact, exact_pairs, summary = _dedup(pool, tmp_path / "exact", search="exact")
    assert summary["search"] == "IndexFlatIP" and len(exact) > 20
    ivf, ivf_pairs, summary = _dedup(pool, tmp_path / "ivf", search="ivf", nprobe=10_000)
    assert summary["search"] == "IndexIVFFlat"
    assert ivf == exact
    pd.testing.assert_frame_equal(ivf_pairs, exact_pairs)


def test_ivf_probing_few_cells_keeps_the_decisions(pool, tmp_path):
    exact, _, _ = _dedup(pool, tmp_path / "exact", search="auto")  # small: exact
    ivf, _, _ = _dedup(pool, tmp_path / "ivf", search="ivf", nprobe=4)  # of 50 cells
    assert len(exact ^ ivf) <= 2000 * 0.002


def test_training_sample_spreads_over_the_folder(tmp_path, write_embedded_parts):
    # Part k's vectors all carry k, so the sample says which parts it came from.
    vectors = np.repeat(np.arange(40, dtype=np.float32), 10)[:, None] * np.ones((1, 4), np.float32)
    folder = write_embedded_parts(tmp_path / "many", ["x"] * 400, vectors, parts=40)
    parts = sorted(folder.glob("*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
    sample = training_sample(parts, 400, wanted=100)
    assert 80 <= len(sample) <= 120 and sample[:, 0].min() == 0 and sample[:, 0].max() >= 36
    one = write_embedded_parts(tmp_path / "one", ["x"] * 400, vectors, parts=1)
    sample = training_sample(sorted(one.glob("*.parquet")), 400, wanted=100)
    assert len(sample) == 100 and sample[:, 0].max() == 39


def test_unknown_search_is_a_user_error():
    with pytest.raises(UserError, match="semantic search 'hnsw'"):
        SemanticDedupConfig(search="hnsw")
    with pytest.raises(UserError, match="nprobe 0"):
        SemanticDedupConfig(nprobe=0)
