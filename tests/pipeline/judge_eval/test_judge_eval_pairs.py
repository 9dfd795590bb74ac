"""Labelled pairs: the real dev file reads whole, GPT-4's recorded row matches a count
made straight from the JSONL, and bad rows are quarantined with their reasons."""

import json

import pytest

from core.errors import UserError
from pipeline.flows.judge_eval import JudgeEvalConfig, prepare_judge_eval
from pipeline.judge_eval.pairs import read_pairs, read_recorded
from pipeline.judge_eval.table import people_reference, recorded_rows

GOOD = {
    "pair_id": 1,
    "prompt": "Say hi.",
    "model_x": "a",
    "answer_x": "Hi!",
    "model_y": "b",
    "answer_y": "Hello there.",
    "crowd_votes": {"x": 2, "y": 1, "tie": 0},
    "gpt4_verdict": "y",
}


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _independent_gpt4_count(path):
    """Agreement of gpt4_verdict with the crowd, counted with plain Python from the file."""
    agree = decided = agree_all = total = 0
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            votes = row["crowd_votes"]
            most = max(votes.values())
            top = [label for label, n in votes.items() if n == most]
            crowd = top[0] if len(top) == 1 else "tie"
            total += 1
            agree_all += crowd == row["gpt4_verdict"]
            if crowd != "tie" and row["gpt4_verdict"] != "tie":
                decided += 1
                agree += crowd == row["gpt4_verdict"]
    return agree, decided, agree_all, total


def test_gpt4_recorded_row_matches_an_independent_count(shared_data):
    path = shared_data / "judging" / "llmfao_pairs_dev.jsonl"
    setup = prepare_judge_eval(path)
    assert len(setup.pairs.pairs) == 653 and setup.pairs.quarantine == []
    (gpt4,) = recorded_rows(setup.pairs.pairs, setup.recorded)
    assert gpt4["name"] == "gpt-4 (recorded)" and gpt4["no_verdict"] == 0
    agree, decided, agree_all, total = _independent_gpt4_count(path)
    assert gpt4["n_without_ties"] == decided
    assert gpt4["agreement_without_ties"] == agree / decided
    assert gpt4["n_with_ties"] == total and gpt4["agreement_with_ties"] == agree_all / total
    people = people_reference(setup.pairs.pairs)
    assert people["pairs"] == 653 and 0 < people["tie_rate"] < 1


def test_limit_is_a_stable_sample_spread_over_the_file(tmp_path, shared_data):
    rows = [{**GOOD, "pair_id": i} for i in (10, 9, 100, 1)]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    three = [p.pair_id for p in prepare_judge_eval(path, JudgeEvalConfig(limit=3)).pairs.pairs]
    assert len(three) == 3 and three == sorted(three, key=int)  # kept in numeric id order
    assert three == [
        p.pair_id for p in prepare_judge_eval(path, JudgeEvalConfig(limit=3)).pairs.pairs
    ]
    two = [p.pair_id for p in prepare_judge_eval(path, JudgeEvalConfig(limit=2)).pairs.pairs]
    assert set(two) < set(three)  # a larger sample keeps the smaller one's pairs
    # The real file lists pairs prompt by prompt; a sample of 50 reaches every prompt.
    dev = shared_data / "judging" / "llmfao_pairs_dev.jsonl"
    slugs = {json.loads(line)["pair_id"]: json.loads(line)["prompt_slug"] for line in dev.open()}
    sample = prepare_judge_eval(dev, JudgeEvalConfig(limit=50)).pairs.pairs
    assert {slugs[int(p.pair_id)] for p in sample} == set(slugs.values())


def test_bad_rows_are_quarantined_with_their_reasons(tmp_path):
    rows = [
        GOOD,
        "{not json",
        "[1, 2]",
        {**GOOD, "pair_id": None},
        {**GOOD},  # duplicate of line 1
        {**GOOD, "pair_id": 5, "crowd_votes": {"x": 1, "maybe": 2}},
        {**GOOD, "pair_id": 6, "crowd_votes": {"x": -1, "y": 2}},
        {**GOOD, "pair_id": 7, "crowd_votes": {"x": 0, "y": 0, "tie": 0}},
        {**GOOD, "pair_id": 8, "gpt4_verdict": "maybe"},
        {**GOOD, "pair_id": 9, "prompt": "  "},
        {**GOOD, "pair_id": 10, "answer_x": 3},
        "",
        {**GOOD, "pair_id": "p-11", "gpt4_verdict": None, "model_x": None},
    ]
    pairs = read_pairs(_jsonl(tmp_path / "p.jsonl", rows))
    assert [p.pair_id for p in pairs.pairs] == ["1", "p-11"]
    assert pairs.pairs[1].gpt4_verdict is None and pairs.pairs[1].model_x == ""
    assert pairs.rows == 12  # the blank line is not a row
    reasons = {q["line"]: q["reason"] for q in pairs.quarantine}
    assert reasons == {
        2: "not valid JSON (Expecting property name enclosed in double quotes)",
        3: "not a JSON object",
        4: "pair_id must be an integer or a non-empty string",
        5: "duplicate pair_id 1 (first on line 1)",
        6: "crowd_votes: unknown label 'maybe' (expected x, y, tie)",
        7: "crowd_votes.x must be a count >= 0, got -1",
        8: "crowd_votes: no votes",
        9: "gpt4_verdict 'maybe' is not one of x, y, tie",
        10: "prompt is empty",
        11: "answer_x must be a string",
    }
    assert pairs.pairs[0].human == "x" and pairs.pairs[0].longer == "y"


def test_missing_or_unusable_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        prepare_judge_eval(tmp_path / "missing.jsonl")
    bad = _jsonl(tmp_path / "bad.jsonl", ["{", {**GOOD, "crowd_votes": {}}])
    with pytest.raises(
        UserError, match=r"no usable labelled pairs \(2 rows, 2 quarantined; line 1"
    ):
        prepare_judge_eval(bad)
    with pytest.raises(UserError, match="no usable labelled pairs"):
        prepare_judge_eval(_jsonl(tmp_path / "empty.jsonl", []))
    good = _jsonl(tmp_path / "good.jsonl", [GOOD])
    with pytest.raises(UserError, match="--judge 'nobody' is not in roster judges"):
        prepare_judge_eval(good, JudgeEvalConfig(judge="nobody"))
    with pytest.raises(UserError, match="no such file"):
        prepare_judge_eval(good, JudgeEvalConfig(recorded=(str(tmp_path / "none.jsonl"),)))
    with pytest.raises(UserError, match="--limit"):
        JudgeEvalConfig(limit=0)


def test_recorded_verdicts_file(tmp_path):
    pairs = read_pairs(_jsonl(tmp_path / "p.jsonl", [GOOD, {**GOOD, "pair_id": 2}]))
    path = _jsonl(
        tmp_path / "other-judge.jsonl",
        [
            {"pair_id": 1, "verdict": "x"},
            {"pair_id": 1, "verdict": "y"},
            {"pair_id": 3, "verdict": "tie"},
            {"pair_id": 4, "verdict": "A"},
        ],
    )
    recorded = read_recorded(path)
    assert recorded.name == "other-judge (recorded)"
    assert recorded.verdicts == {"1": "x", "3": "tie"}
    assert [q["reason"] for q in recorded.quarantine] == [
        "duplicate pair_id 1 (first on line 1)",
        "verdict 'A' is not one of x, y, tie",
    ]
    (row,) = recorded_rows(pairs.pairs, [recorded])
    # Pair 1: x, people x (2-1-0); pair 2: no verdict.
    assert row["no_verdict"] == 1 and row["agreement_without_ties"] == 1.0
    with pytest.raises(UserError, match="no usable verdicts"):
        read_recorded(_jsonl(tmp_path / "r.jsonl", [{"pair_id": 1}]))
