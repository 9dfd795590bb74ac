"""The static (model2vec) embedder: distilled once from the packaged MiniLM into the cache,
unit float32 vectors, a ready model2vec folder used as it is, one-line errors for a bad
one, float32 footers (no re-check), and a real build on a LocalCluster whose report names
the embedder."""

import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from pipeline.dedup.semantic import SemanticDedupConfig, semantic_dedup
from pipeline.evalset import static_embedder
from pipeline.evalset.embed import (
    EmbedConfig,
    EmbedConversations,
    describe_embedder,
    embed_texts,
    embedded_dtype,
)
from pipeline.evalset.report import embedder_line
from pipeline.flows.evalset import Recipe
from tests.pipeline.evalset.conftest import one_part_pool

STATIC = "static:builtin:all-minilm-l6-v2"
TEXTS = [
    "How did US states get their names?",
    "What is the origin of the names of the US states?",
    "Write a Python function that reverses a linked list.",
    "Give me a recipe for a vegan chocolate cake.",
    "",
]


@pytest.fixture(scope="module")
def distilled():
    """The distilled MiniLM folder (from $ARENA_CACHE when an earlier run made it) and how
    long getting it took: ~60-110 s to distil on 2 busy cores, well under 1 s cached."""
    start = time.perf_counter()
    folder = static_embedder.model_dir(STATIC)
    seconds = time.perf_counter() - start
    print(f"static model ready in {seconds:.1f} s: {folder}")
    return folder, seconds


@pytest.mark.slow
def test_distilled_once_into_the_cache_then_reused(distilled, monkeypatch):
    from arena_models.local_models import cache_root

    folder, _ = distilled
    assert folder.parent == cache_root() / "static" and folder.name.startswith("all-minilm-l6-v2-")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "model2vec"
    assert not list(folder.parent.glob(f".{folder.name}.tmp-*"))  # nothing half-written left

    def no_distilling(*_):
        raise AssertionError("distilled again")

    monkeypatch.setattr(static_embedder, "_distil", no_distilling)
    start = time.perf_counter()
    assert static_embedder.model_dir(STATIC) == folder
    assert time.perf_counter() - start < 5
    # Other settings are another folder: a change is never mistaken for the cached model.
    source = static_embedder.resolve(STATIC).path
    monkeypatch.setattr(static_embedder, "DISTILL_SETTINGS", {"pca_dims": 128})
    assert static_embedder.distilled_dir(STATIC, source) != folder


@pytest.mark.slow
def test_vectors_are_unit_float32_deterministic_and_semantic(distilled):
    config = EmbedConfig(model=STATIC)
    assert config.dtype == "float32"  # auto means float32 for a static embedder
    vectors = embed_texts(TEXTS, config)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)  # the empty text too
    # A fresh load of the folder gives the same bytes.
    again = static_embedder.StaticEncoder(distilled[0]).embed(TEXTS, config.max_seq_length)
    assert np.array_equal(vectors, again)
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > max(cosine[0, 2:]) + 0.25  # the paraphrase is by far the nearest


@pytest.mark.slow
def test_a_ready_model2vec_folder_is_used_as_it_is(distilled, tmp_path):
    import shutil

    folder = shutil.copytree(distilled[0], tmp_path / "my-static")
    model = f"static:{folder}"
    assert static_embedder.resolve(model) == static_embedder.StaticSource(folder, distil=False)
    assert static_embedder.model_dir(model) == folder
    ours = embed_texts(TEXTS, EmbedConfig(model=model))
    assert np.array_equal(ours, embed_texts(TEXTS, EmbedConfig(model=STATIC)))
    assert static_embedder.describe(model)["folder"] == str(folder)


def test_bad_sources_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such folder") as missing:
        EmbedConfig(model=f"static:{tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match="no readable config.json"):
        Recipe(embed_model=f"static:{tmp_path}")  # a recipe checks it on creation
    with pytest.raises(UserError, match="unknown builtin model 'gte-large'"):
        EmbedConfig(model="static:builtin:gte-large")
    with pytest.raises(UserError, match="computes in float32"):
        EmbedConfig(model=STATIC, dtype="bfloat16")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "model2vec"}')
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    (broken / "tokenizer.json").write_text("{}")
    config = EmbedConfig(model=f"static:{broken}")  # looks like one: found out on load
    with pytest.raises(UserError, match="not a loadable model2vec folder") as unloadable:
        embed_texts(["hello"], config)
    for error in (missing, unloadable):
        assert "\n" not in str(error.value)


@pytest.mark.slow
def test_static_parts_say_float32_and_skip_the_float32_recheck(distilled, tmp_path):
    pool = tmp_path / "pool"
    task = one_part_pool(pool)
    config = EmbedConfig(model=STATIC)  # dtype auto
    stage = EmbedConversations(pool, tmp_path / "embedded", config)
    result = stage.process(task)
    part = tmp_path / "embedded" / "part-0-0000.parquet"
    assert embedded_dtype(part, "unknown") == "float32"
    assert pq.read_schema(part).field("embedding").type.list_size == 256
    assert stage.config_dict()["static"] == static_embedder.DISTILL_SETTINGS
    assert SemanticDedupConfig(embed=config).recheck is None  # nothing to re-check
    dropped = semantic_dedup(
        tmp_path / "embedded", tmp_path / "pairs", threshold=0.9, progress=False, recheck=config
    )
    summary = json.loads((tmp_path / "pairs" / "summary.json").read_text())
    assert dropped == {"b"} and summary["float32_rows"] == 0
    about = describe_embedder(config, [result])
    assert about["kind"] == "static" and about["dim"] == 256 and about["dtypes"] == ["float32"]
    assert about["distilled_from"] == "builtin:all-minilm-l6-v2" and about["pca_dims"] == 256


def test_report_line_names_either_embedder():
    transformer = {
        "kind": "transformer",
        "model": "builtin:all-minilm-l6-v2",
        "dim": 384,
        "dtypes": ["bfloat16", "float32"],
    }
    assert embedder_line(transformer) == (
        "builtin:all-minilm-l6-v2: transformer (sentence-transformers); 384 dims, bfloat16, float32"
    )
    static = {**static_embedder.describe(STATIC), "dim": 256, "dtypes": ["float32"]}
    assert embedder_line(static) == (
        f"{STATIC}: static model2vec, distilled from builtin:all-minilm-l6-v2 "
        "(PCA 256 dims, SIF 0.0001); 256 dims, float32"
    )


@pytest.mark.slow
def test_build_with_the_static_key_names_the_embedder(client, shared_data, distilled, tmp_path):
    from core.runner import run_stage
    from pipeline.flows.dedup import run_exact_dedup
    from pipeline.flows.evalset import build_from_deduped, evalset_report
    from pipeline.ingest.readers import expand_inputs
    from pipeline.ingest.stage import IngestPools

    lines = (shared_data / "prompts" / "alpaca_eval.jsonl").read_text().splitlines()[:40]
    (tmp_path / "pool.jsonl").write_text("\n".join(lines) + "\n")
    run_stage(IngestPools(expand_inputs([str(tmp_path / "pool.jsonl")]), tmp_path / "pool"), client)
    run_exact_dedup(client, tmp_path / "pool", tmp_path / "dedup")
    recipe = Recipe.load(
        None,
        {
            "embed_model": STATIC,
            "clusters": 4,
            "diverse_per_cluster": 2,
            "hard_candidates_per_cluster": 1,
            "hard_top": 2,
            "semantic_threshold": 0.95,
        },
    )
    counts = build_from_deduped(client, tmp_path / "dedup", tmp_path / "out", recipe)
    assert counts["diverse_clusters"] == 4 and counts["embedder"]["kind"] == "static"
    manifest = json.loads((tmp_path / "out" / "embedded" / "_manifest.json").read_text())
    assert manifest["summary"]["embedder"] == counts["embedder"]
    assert counts["embedder"]["dim"] == 256 and counts["embedder"]["dtypes"] == ["float32"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"- embedder: {STATIC}: static model2vec, distilled from" in report
    semantic = json.loads((tmp_path / "out" / "semantic_dedup" / "_manifest.json").read_text())
    assert semantic["summary"]["float32_rows"] == 0
    assert "embedded by static:builtin:all-minilm-l6-v2: static model2vec" in evalset_report(
        counts, tmp_path / "out"
    )
