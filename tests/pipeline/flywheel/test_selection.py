"""Selection into trl shards from hand-built battle runs (real Arena-Hard prompts, real
recorded GPT answers, the real answer cache and record writers; scores chosen here): the
best winner's answer, every drop reason, multi-turn prompts, accumulated runs, byte-identical
shards bounded by shard_rows, and one-line errors for bad input."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from pipeline.flywheel.selection import SelectionConfig, select, select_shard
from pipeline.flywheel.shards import read_manifest
from tests.pipeline.flywheel.conftest import OPPONENTS, TARGET, arena_hard, recorded

O1, O2 = OPPONENTS  # gpt-4-0314, gpt-4-0613


def _answers(builder, pid, uids, *, skip=(), override=None):
    """Every model's recorded answers to the turns `uids`, except `skip` models."""
    for model in (TARGET, *OPPONENTS):
        if model in skip:
            continue
        texts, finish = [recorded(model)[u] for u in uids], ()
        if override and model in override:
            texts, finish = override[model]
        builder.answer(model, pid, *texts, finish=finish)


@pytest.fixture
def scenario(run_builder):
    """Seven prompts, the target against two opponents on each (scores: game 1, game 2)."""
    b = run_builder("run")
    ah = arena_hard()
    p = {}
    for n in (1, 2, 3, 4, 5, 7):
        p[n] = b.prompt(ah[n - 1][1])
    p[6] = b.prompt(ah[5][1], ah[6][1])  # two user turns
    uids = {n: [ah[n - 1][0]] for n in (1, 2, 3, 4, 5, 7)} | {6: [ah[5][0], ah[6][0]]}
    for n in (1, 2, 3, 7):
        _answers(b, p[n], uids[n])
    _answers(b, p[4], uids[4], override={O1: ([recorded(O1)[uids[4][0]]], ("length",))})
    _answers(b, p[5], uids[5], skip=(O1,), override={O2: ([" \n"], ())})
    _answers(b, p[6], uids[6])
    b.pair(p[1], TARGET, O1, (3, 3), (8, 8))  # lost by 5, O1 scored 8
    b.pair(p[1], TARGET, O2, (3, 3), (7, 7))  # lost by 4
    b.pair(p[2], TARGET, O1, (8, 9), (5, 6))  # the target won by 3
    b.pair(p[2], TARGET, O2, (6, 6), (6, 6))  # tie
    b.pair(p[3], TARGET, O1, (5, 5), (6, 7))  # lost by 1.5
    b.pair(p[3], TARGET, O2, error="unreadable verdict")
    b.pair(p[4], TARGET, O1, (2, 2), (7, 7))  # lost by 5, but O1's answer was cut off
    b.pair(p[4], TARGET, O2, (2, 2), (5, 5))  # lost by 3
    b.pair(p[5], TARGET, O1, (1, 1), (9, 9))  # O1's answer is not in the cache
    b.pair(p[5], TARGET, O2, (1, 1), (8, 8))  # O2's answer is empty
    b.pair(p[6], TARGET, O1, (5, 5), (6, 6))  # lost by 1
    b.pair(p[6], TARGET, O2, (2, 3), (8, 7))  # lost by 5
    b.pair(p[7], TARGET, O1, (4, 4), (8, 8))  # both won by 4: the name decides
    b.pair(p[7], TARGET, O2, (4, 4), (8, 8))
    return b.write(), p, uids


def _reasons(dropped) -> dict:
    return {(r["prompt_id"], r["model_b"]): r["reason"] for r in dropped.to_pylist()}


def _pair_count(dropped) -> int:
    return sum(r["model_b"] is not None for r in dropped.to_pylist())


def test_sft_takes_the_best_winners_answer_and_drops_every_other_pair_with_a_reason(scenario):
    run, p, uids = scenario
    rows, dropped, stats = select(run, TARGET, SelectionConfig("sft", sft_gap=3), slices=2)
    got = {r["prompt_id"]: r for r in rows.to_pylist()}
    assert {pid: r["source_model"] for pid, r in got.items()} == {
        p[1]: O1,
        p[4]: O2,  # O1 won by more, but its answer was cut off
        p[6]: O2,
        p[7]: O1,
    }
    single = got[p[1]]
    assert single["prompt"] == [{"role": "user", "content": arena_hard()[0][1]}]
    assert single["completion"] == [{"role": "assistant", "content": recorded(O1)[uids[1][0]]}]
    assert (single["target_score"], single["source_score"], single["gap"]) == (3, 8, 5)
    assert (single["slice"], single["battle_run"], single["target"]) == (2, str(run), TARGET)
    assert single["judge"] == "smollm2-judge"
    turns = got[p[6]]  # earlier turn and the winner's own answer to it in the prompt
    first, second = (recorded(O2)[u] for u in uids[6])
    assert [m["role"] for m in turns["prompt"]] == ["user", "assistant", "user"]
    assert turns["prompt"][1]["content"] == first
    assert turns["completion"] == [{"role": "assistant", "content": second}]
    assert _reasons(dropped) == {
        (p[1], O2): f"not the best winner ({O1} scored 8)",
        (p[2], O1): "target won or tied",
        (p[2], O2): "target won or tied",
        (p[3], O1): "gap 1.5 below sft_gap 3",
        (p[3], O2): "judge error: game 2: unreadable verdict",
        (p[4], O1): f"{O1}'s answer cut off at max_tokens",
        (p[5], O1): f"answer missing: no cached answer of {O1}",
        (p[5], O2): f"empty answer from {O2}",
        (p[6], O1): "gap 1 below sft_gap 3",
        (p[7], O2): f"not the best winner ({O1} scored 8)",  # by name
    }
    assert rows.num_rows + _pair_count(dropped) == stats["pairs"] == 14  # nothing lost
    assert stats["sources"] == {"source_model": {O1: 2, O2: 2}}
    assert stats["dropped"] == {
        "answer cut off": 1,
        "answer missing": 1,
        "empty answer": 1,
        "gap below threshold": 2,
        "judge error": 1,
        "not the best winner": 2,
        "target won or tied": 2,
    }
    assert stats["gap_histogram"] == {
        "0.0": 1,
        "1.0": 1,
        "1.5": 1,
        "3.0": 2,
        "4.0": 3,
        "5.0": 3,
        "7.0": 1,
        "8.0": 1,
    }
    assert stats["decided"] == 13


def test_dpo_and_reward_pairs_take_the_target_as_chosen_when_it_won(scenario):
    run, p, uids = scenario
    rows, dropped, stats = select(run, TARGET, SelectionConfig("dpo", dpo_gap=2))
    got = {(r["prompt_id"], r["chosen_model"], r["rejected_model"]): r for r in rows.to_pylist()}
    assert set(got) == {
        (p[1], O1, TARGET),
        (p[1], O2, TARGET),
        (p[2], TARGET, O1),
        (p[4], O2, TARGET),
        (p[7], O1, TARGET),
        (p[7], O2, TARGET),
    }
    won = got[(p[2], TARGET, O1)]
    assert won["prompt"] == [{"role": "user", "content": arena_hard()[1][1]}]
    assert won["chosen"] == [{"role": "assistant", "content": recorded(TARGET)[uids[2][0]]}]
    assert won["rejected"] == [{"role": "assistant", "content": recorded(O1)[uids[2][0]]}]
    assert (won["chosen_score"], won["rejected_score"], won["gap"]) == (8.5, 5.5, 3)
    reasons = _reasons(dropped)
    assert reasons[(p[2], O2)] == "tie"
    assert reasons[(p[3], O1)] == "gap 1.5 below dpo_gap 2"
    assert reasons[(p[6], O2)] == "multi-turn: the two answers condition on different earlier turns"
    assert reasons[(p[4], O1)] == f"{O1}'s answer cut off at max_tokens"
    assert len(reasons) == 8 and rows.num_rows + _pair_count(dropped) == stats["pairs"]
    assert stats["sources"] == {
        "chosen_model": {O1: 2, O2: 3, TARGET: 1},
        "rejected_model": {O1: 1, TARGET: 5},
    }

    rows, dropped, _ = select(run, TARGET, SelectionConfig("reward", reward_gap=2))
    got = {(r["prompt_id"], r["chosen_model"]): r for r in rows.to_pylist()}
    assert len(got) == 7  # the dpo pairs and the multi-turn one, as whole conversations
    turns = got[(p[6], O2)]
    assert [m["content"] for m in turns["chosen"]] == [
        arena_hard()[5][1],
        *(recorded(O2)[u] for u in uids[6][:1]),
        arena_hard()[6][1],
        recorded(O2)[uids[6][1]],
    ]
    assert [m["role"] for m in turns["rejected"]] == ["user", "assistant", "user", "assistant"]
    assert turns["rejected"][3]["content"] == recorded(TARGET)[uids[6][1]]
    assert turns["margin"] == turns["gap"] == 5
    assert got[(p[1], O1)]["chosen"][-1]["content"] == recorded(O1)[uids[1][0]]


def test_the_runs_combine_rule_decides_who_won(run_builder):
    b = run_builder()
    pid = b.prompt(arena_hard()[0][1])
    _answers(b, pid, [arena_hard()[0][0]])
    b.pair(pid, TARGET, O1, (6, 2), (3, 9))  # games disagree; the sums favour O1 by 2
    cfg = SelectionConfig("sft", sft_gap=1)
    assert select(b.write("total"), TARGET, cfg).rows.num_rows == 1
    rows, dropped, _ = select(b.write("consistent"), TARGET, cfg)
    assert rows.num_rows == 0 and dropped.column("reason").to_pylist() == ["target won or tied"]


def _files(folder) -> dict:
    return {
        str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()
    }


def test_shards_are_byte_identical_bounded_and_read_back_as_written(scenario, tmp_path):
    run, _, _ = scenario
    cfg = SelectionConfig("dpo", dpo_gap=2, shard_rows=4, jsonl=True)
    first = select_shard(run, TARGET, cfg, tmp_path / "a")
    again = select_shard(run, TARGET, cfg, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b") and first == again
    assert first["parts"] == ["part-00000.parquet", "part-00001.parquet"]
    assert [pq.ParquetFile(tmp_path / "a" / f).metadata.num_rows for f in first["parts"]] == [4, 2]
    frame = pd.read_parquet(tmp_path / "a")  # side outputs stay out of the rows
    assert len(frame) == first["rows"] == 6
    assert list(frame.prompt_id) == sorted(frame.prompt_id)
    lines = (tmp_path / "a" / "_jsonl" / "part-00000.jsonl").read_text().splitlines()
    assert [json.loads(x)["chosen_model"] for x in lines] == list(frame.chosen_model)
    dropped = pd.read_parquet(tmp_path / "a" / "_dropped")
    assert list(dropped.columns) == ["prompt_id", "model_a", "model_b", "battle_run", "reason"]
    assert len(dropped) == sum(first["dropped"].values()) == 8
    manifest = read_manifest(tmp_path / "a")
    assert set(manifest) >= {
        "kind", "format", "rows", "parts", "content_hash", "sources", "dropped",
        "gap_histogram", "thresholds", "slices", "battle_runs", "judge", "target",
        "config_hash", "trained",
    }  # fmt: skip
    assert manifest["thresholds"] == {"dpo_gap": 2.0} and manifest["trained"] is None
    assert manifest["battle_runs"] == [str(run)] and manifest["target"] == TARGET

    one = select_shard(run, TARGET, SelectionConfig("dpo", shard_rows=1), tmp_path / "a")
    assert len(one["parts"]) == 6 and one["content_hash"] != first["content_hash"]
    assert not (tmp_path / "a" / "_jsonl" / "part-00000.jsonl").exists()
    whole = select_shard(run, TARGET, SelectionConfig("dpo"), tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").glob("part-*")) == ["part-00000.parquet"]
    assert pd.read_parquet(tmp_path / "a").equals(frame)
    assert whole["config_hash"] != first["config_hash"]


def test_accumulated_runs_are_concatenated_and_a_pair_is_taken_once(run_builder, tmp_path):
    ah = arena_hard()
    runs = []
    for name, prompts in (("D3", (0, 1)), ("D6", (1, 2))):
        b = run_builder(name)
        for n in prompts:
            pid = b.prompt(ah[n][1])
            _answers(b, pid, [ah[n][0]])
            b.pair(pid, TARGET, O1, (2, 2), (6, 6))
            b.pair(pid, TARGET, O2, (2, 2), (3, 3))  # gap 1: below reward_gap
        runs.append(b.write())
    # target None: each run's own --target
    manifest = select_shard(runs, None, SelectionConfig("reward"), tmp_path / "rm", slices=[3, 6])
    rows = pd.read_parquet(tmp_path / "rm")
    assert len(rows) == 3 and set(rows.chosen_model) == {O1}
    # Provenance names runs relative to the shard folder, so the bytes do not depend on OUT.
    d3, d6 = (os.path.relpath(r, tmp_path / "rm") for r in runs)
    assert sorted(zip(rows.battle_run, rows.slice)) == [(d3, 3)] * 2 + [(d6, 6)]
    assert list(rows.margin) == [4.0] * 3
    dropped = pd.read_parquet(tmp_path / "rm" / "_dropped")
    duplicate = dropped[dropped.reason.str.startswith("duplicate")]
    assert list(duplicate.battle_run) == [d6]
    assert manifest["dropped"] == {"duplicate": 1, "gap below threshold": 4}
    assert manifest["slices"] == [3, 6] and manifest["battle_runs"] == [str(r) for r in runs]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SelectionConfig("ppo"), "selection kind 'ppo': expected one of sft, dpo, reward"),
        (lambda: SelectionConfig(sft_gap=-1), "sft_gap -1: expected 0 <= gap <= 9"),
        (lambda: SelectionConfig(dpo_gap=9.5), "dpo_gap 9.5: expected 0 <= gap <= 9"),
        (lambda: SelectionConfig(shard_rows=0), "shard_rows 0: expected at least 1"),
    ],
)
def test_bad_config_is_a_one_line_user_error(make, message):
    with pytest.raises(UserError) as err:
        make()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_bad_input_is_a_one_line_user_error(scenario, tmp_path):
    run, _, _ = scenario
    cfg = SelectionConfig()
    cases = [
        (lambda: select(run, "gpt-5", cfg), f"battle run {run} has no model gpt-5 (models: "),
        (lambda: select(tmp_path, TARGET, cfg), f"battle run {tmp_path}: no battles/ folder"),
        (lambda: select([run, run], TARGET, cfg, slices=[1]), "1 slices for 2 battle runs"),
        (lambda: select([], TARGET, cfg), "selection needs at least one battle run"),
        (lambda: read_manifest(tmp_path), f"{tmp_path}: no _manifest.json"),
    ]
    for call, message in cases:
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value).startswith(message), str(err.value)
        assert "\n" not in str(err.value)


def test_a_cut_off_answer_may_be_rejected_but_never_chosen(run_builder):
    ah = arena_hard()
    b = run_builder("run")
    lost, won = b.prompt(ah[0][1]), b.prompt(ah[1][1])
    # The target's answers are cut off on both prompts; it loses the first, wins the second.
    for pid, uid, target_scores, opponent_scores in (
        (lost, ah[0][0], (2, 2), (7, 7)),
        (won, ah[1][0], (8, 8), (3, 3)),
    ):
        _answers(b, pid, [uid], override={TARGET: ([recorded(TARGET)[uid]], ("length",))})
        b.pair(pid, TARGET, O1, target_scores, opponent_scores)
    run = b.write()
    rows, dropped, _ = select(run, TARGET, SelectionConfig("dpo", dpo_gap=2))
    assert [(r["prompt_id"], r["chosen_model"]) for r in rows.to_pylist()] == [(lost, O1)]
    assert _reasons(dropped)[(won, O1)] == f"{TARGET}'s answer cut off at max_tokens"
