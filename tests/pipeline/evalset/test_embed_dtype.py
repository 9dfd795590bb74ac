"""dtype "auto" means bfloat16 only where the hardware has it; parts record what made them."""

import json

import pytest
import torch

from core.errors import UserError
from pipeline.dedup.semantic import semantic_dedup
from pipeline.evalset.embed import (
    EmbedConfig,
    EmbedConversations,
    embedded_dtype,
    resolved_dtype,
)
from tests.pipeline.evalset.conftest import one_part_pool


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, "bfloat16"), (False, True, "bfloat16"), (False, False, "float32")],
)
def test_auto_is_bfloat16_only_on_cpus_that_compute_it(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolved_dtype("auto") == expected
    assert resolved_dtype("float32") == "float32" and resolved_dtype("bfloat16") == "bfloat16"


def test_unknown_dtype_is_a_user_error():
    with pytest.raises(UserError, match="embed dtype 'fp8'"):
        EmbedConfig(dtype="fp8")


def test_float32_parts_skip_the_float32_recheck(tmp_path):
    pool = tmp_path / "pool"
    task = one_part_pool(pool)
    stage = EmbedConversations(pool, tmp_path / "embedded", EmbedConfig(dtype="float32"))
    stage.process(task)
    part = tmp_path / "embedded" / "part-0-0000.parquet"
    assert embedded_dtype(part, "unknown") == "float32"
    # Asked to re-check bfloat16 vectors, semantic dedup reads the footer and needs no float32.
    dropped = semantic_dedup(
        tmp_path / "embedded",
        tmp_path / "report",
        threshold=0.9,
        progress=False,
        recheck=EmbedConfig(dtype="bfloat16"),
    )
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert dropped == {"b"} and summary["float32_margin"] == 0 and summary["float32_rows"] == 0
