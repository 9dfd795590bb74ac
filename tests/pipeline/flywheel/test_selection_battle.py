"""Selection from one real battle run: recorded gpt-3.5-turbo-0125 (the target) against
recorded gpt-4-0314 and gpt-4-0613 on Arena-Hard prompts, judged on vLLM on a real
LocalCluster. The SFT and DPO shards are checked against a recomputation from the battle
records and the recorded answer files (pandas, not the selection code), and trl loads them.

The subject is selection, not the judge's taste, so the judge is the session's tiny Llama
(tests/tiny_model.py) with expected scores (`scoring: expected`): they differ from pair
to pair, so SFT takes every loss (gap 0) and DPO pairs need a gap that leaves some out."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import prepare_battle, run_battle
from pipeline.flywheel.selection import SelectionConfig, select_shard
from pipeline.flywheel.shards import read_manifest

REPO = Path(__file__).resolve().parents[3]
RECORDED = REPO / "arena_models" / "rosters" / "answers"
TARGET, OPPONENTS = "gpt-3.5-turbo-0125", ("gpt-4-0314", "gpt-4-0613")
SFT_GAP, DPO_GAP = 0.0, 0.05  # per-game expected-score differences
PROMPTS = 8


def _recorded(model: str) -> dict[str, str]:
    """prompt text -> the model's recorded answer (Arena-Hard: one user turn each)."""
    with open(RECORDED / f"{model}.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return {r["messages"][0]["content"]: r["messages"][1]["content"]["answer"] for r in rows}


def _expected(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From the battle records: each target pair's per-game averages, the winner by the
    summed scores (the default `total` rule) and the gap."""
    records = pd.read_parquet(out / "battles")
    ok = records.groupby(["prompt_id", "model_a", "model_b"])["error"].apply(
        lambda e: e.isna().all()
    )
    scores = records.astype({"score_a": "float64", "score_b": "float64"})
    sums = scores.groupby(["prompt_id", "model_a", "model_b"])[["score_a", "score_b"]].sum()
    pairs = sums[ok].reset_index()
    is_a = pairs.model_a == TARGET
    pairs["opponent"] = pairs.model_b.where(is_a, pairs.model_a)
    pairs["target_score"] = pairs.score_a.where(is_a, pairs.score_b) / 2
    pairs["opponent_score"] = pairs.score_b.where(is_a, pairs.score_a) / 2
    pairs["gap"] = (pairs.target_score - pairs.opponent_score).abs()
    decided = pairs[pairs.gap > 0]
    lost = decided[(decided.opponent_score > decided.target_score) & (decided.gap >= SFT_GAP)]
    best = (
        lost.sort_values(["prompt_id", "opponent_score", "opponent"], ascending=[True, False, True])
        .groupby("prompt_id")
        .head(1)
    )
    dpo = decided[decided.gap >= DPO_GAP].copy()
    won = dpo.target_score > dpo.opponent_score
    dpo["chosen"] = dpo.opponent.where(~won, TARGET)
    dpo["rejected"] = dpo.opponent.where(won, TARGET)
    return best.set_index("prompt_id"), dpo


@pytest.mark.slow
def test_shards_from_a_real_battle_match_the_records_and_load_in_trl(
    tmp_path, gpu_worker, monkeypatch, tiny_llama
):
    # vLLM gives up compiling the verdict regex after 5 s, which a busy two-core machine
    # can take; the workers inherit this.
    monkeypatch.setenv("VLLM_REGEX_COMPILATION_TIMEOUT_S", "120")
    texts = {m: _recorded(m) for m in (TARGET, *OPPONENTS)}
    with open(REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl", encoding="utf-8") as f:
        # Short prompts: the judge's context (2048 tokens) holds the prompt and both answers.
        prompts = [p for p in (json.loads(line)["prompt"] for line in f) if len(p) < 400]
    rows = [
        {
            "prompt_id": prompt_id([{"role": "user", "content": p}]),
            "messages": [{"role": "user", "content": p}],
            "source": "arena-hard",
            "source_id": None,
            "source_file": "arena_hard_v0.1.jsonl",
            "source_line": n,
            "metadata": "{}",
        }
        for n, p in enumerate(prompts[:PROMPTS])
    ]
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), tmp_path / "evalset" / "part-00000.parquet"
    )
    (tmp_path / "roster.yaml").write_text(
        "models:\n"
        + "".join(
            f"  - {{name: {m}, backend: recorded, path: '{RECORDED / m}.jsonl'}}\n"
            for m in (TARGET, *OPPONENTS)
        )
    )
    (tmp_path / "judges.yaml").write_text(
        f"models:\n  - {{name: judge, backend: vllm, path: '{tiny_llama}', enforce_eager: true,"
        " max_model_len: 2048, scoring: expected, sampling: {temperature: 0.0, max_tokens: 200}}\n"
    )
    config = BattleConfig(
        schedule="target", target=TARGET, max_answer_chars=400, judge_retries=1, judge_chunk=32
    )
    setup = prepare_battle(
        tmp_path / "roster.yaml", config, judge="judge", judge_roster=tmp_path / "judges.yaml"
    )
    out = tmp_path / "run"
    with gpu_worker() as client:
        run_battle(client, setup, tmp_path / "evalset", out, progress=False)
    records = pd.read_parquet(out / "battles")
    assert len(records) == PROMPTS * 2 * 2 and records.error.isna().all(), records.error.dropna()

    sft = select_shard(out, TARGET, SelectionConfig("sft", sft_gap=SFT_GAP), tmp_path / "sft")
    dpo = select_shard(out, TARGET, SelectionConfig("dpo", dpo_gap=DPO_GAP), tmp_path / "dpo")
    best, pairs = _expected(out)
    prompt_text = {r["prompt_id"]: r["messages"][0]["content"] for r in rows}

    got = pd.read_parquet(tmp_path / "sft").set_index("prompt_id")
    assert len(best) > 0, "the judge let the target lose nowhere"
    assert sorted(got.index) == sorted(best.index)
    for pid, row in got.iterrows():
        winner = best.loc[pid, "opponent"]
        assert row.source_model == winner
        assert row.gap == pytest.approx(best.loc[pid, "gap"], abs=1e-4)
        assert list(row.prompt) == [{"role": "user", "content": prompt_text[pid]}]
        answer = texts[winner][prompt_text[pid]]
        assert list(row.completion) == [{"role": "assistant", "content": answer}]

    got = pd.read_parquet(tmp_path / "dpo")
    assert len(pairs) > 0
    assert sorted(zip(got.prompt_id, got.chosen_model, got.rejected_model)) == sorted(
        zip(pairs.prompt_id, pairs.chosen, pairs.rejected)
    )
    for row in got.itertuples():
        text = prompt_text[row.prompt_id]
        assert row.chosen[0]["content"] == texts[row.chosen_model][text]
        assert row.rejected[0]["content"] == texts[row.rejected_model][text]
    assert sum(dpo["dropped"].values()) == 2 * PROMPTS - len(got)  # every pair accounted for

    from datasets import load_dataset
    from trl.data_utils import is_conversational

    for kind, manifest, columns in (
        ("sft", sft, {"prompt", "completion"}),
        ("dpo", dpo, {"prompt", "chosen", "rejected"}),
    ):
        assert read_manifest(tmp_path / kind) == manifest
        files = [str(tmp_path / kind / p) for p in manifest["parts"]]
        data = load_dataset("parquet", data_files=files, split="train")
        assert len(data) == manifest["rows"] and columns <= set(data.column_names)
        assert all(is_conversational(example) for example in data)
        assert data[0][next(iter(columns - {"prompt"}))][0]["role"] == "assistant"
