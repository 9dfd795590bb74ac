"""Semantic dedup on bfloat16 vectors decides the pairs near the threshold in float32."""

import json

import numpy as np
import pandas as pd

from bench.evalset import generate
from pipeline.dedup.semantic import semantic_dedup
from pipeline.dedup.semantic_rule import kept_in_block
from pipeline.evalset.embed import EmbedConfig, embed_texts


def test_borderline_pair_is_decided_by_the_exact_cosine():
    sims = np.array([[1.0, 0.952, 0.990], [0.952, 1.0, 0.5], [0.990, 0.5, 1.0]], np.float32)
    keep, match, _ = kept_in_block(sims.copy(), 0.95)
    assert keep.tolist() == [True, False, False]
    # In float32 the 0.952 pair is really 0.948: row 1 stays; the clear 0.990 pair is not rechecked.
    asked = []

    def exact(i, j):
        asked.append((i, j))
        return 0.948

    keep, match, sim = kept_in_block(sims.copy(), 0.95, band=0.005, exact_cosine=exact)
    assert keep.tolist() == [True, True, False]
    assert asked == [(0, 1)]
    assert match[2] == 0 and sim[2] == np.float32(0.990)


def test_bfloat16_with_recheck_drops_exactly_what_float32_drops(tmp_path, write_embedded_parts):
    # Template prompts differ by a serial number, so many pairs sit near 0.95.
    texts = generate(1200, seed=7)
    full = write_embedded_parts(
        tmp_path / "f32", texts, embed_texts(texts, EmbedConfig(dtype="float32"))
    )
    bf16 = write_embedded_parts(
        tmp_path / "bf16", texts, embed_texts(texts, EmbedConfig(dtype="bfloat16"))
    )
    expected = semantic_dedup(full, threshold=0.95, progress=False)
    dropped = semantic_dedup(
        bf16, tmp_path / "report", threshold=0.95, progress=False, recheck=EmbedConfig()
    )
    assert dropped == expected and len(expected) > 50
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert 0 < summary["float32_rows"] < len(texts) / 4
    pairs = pd.read_parquet(tmp_path / "report" / "pairs.parquet")
    assert pairs["float32"].any() and (pairs["similarity"] >= 0.95).all()
