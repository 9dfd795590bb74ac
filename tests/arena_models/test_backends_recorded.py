"""Recorded answers: real Arena-Hard GPT-4 answers found by prompt text or prompt id."""

import json

import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.recorded_backend import RecordedBackend
from arena_models.multiturn import answer_turn_by_turn
from core.errors import UserError


@pytest.fixture(scope="module")
def arena_hard(shared_data):
    questions = [
        json.loads(line)
        for line in (shared_data / "prompts" / "arena_hard_v0.1.jsonl").read_text().splitlines()
    ]
    answers = {}
    path = shared_data / "answers" / "arena-hard-v0.1" / "gpt-4-0314.jsonl"
    for line in path.read_text().splitlines():
        row = json.loads(line)
        answers[row["uid"]] = row["messages"][1]["content"]["answer"]
    return questions, answers, path


def test_answers_found_by_prompt_and_id(arena_hard):
    questions, answers, path = arena_hard
    backend = RecordedBackend(str(path.parent), name="gpt-4-0314", model="gpt-4-0314")
    picked = questions[:3] + questions[-2:]
    # Whitespace and case differences (a re-read pool) still find the answer.
    convs = [[{"role": "user", "content": q["prompt"]}] for q in picked[:4]]
    convs.append([{"role": "user", "content": "  " + picked[4]["prompt"].upper() + "\n"}])
    out = backend.generate(convs, Sampling())
    assert [g.text for g in out] == [answers[q["uid"]] for q in picked]
    assert all(g.error is None and g.finish_reason == "stop" for g in out)
    assert backend.answer_for_id(picked[0]["uid"]).text == answers[picked[0]["uid"]]
    assert "no recorded answer for id" in backend.answer_for_id("nope").error


def test_missing_answer_is_a_per_item_error(arena_hard):
    questions, answers, path = arena_hard
    backend = RecordedBackend(str(path), name="gpt-4-0314")
    out = backend.generate(
        [
            [{"role": "user", "content": "A question nobody recorded."}],
            [{"role": "user", "content": questions[0]["prompt"]}],
        ],
        Sampling(),
    )
    assert out[0].text == "" and "no recorded answer for prompt" in out[0].error
    assert out[1].text == answers[questions[0]["uid"]]


def test_other_model_filter_and_bad_files(arena_hard, tmp_path):
    _, _, path = arena_hard
    with pytest.raises(UserError, match="no recorded answers of model 'gpt-5'"):
        RecordedBackend(str(path), name="x", model="gpt-5").generate(
            [[{"role": "user", "content": "hi"}]], Sampling()
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"uid": 1}\n')
    with pytest.raises(UserError, match="bad.jsonl:1: not a recorded answer row"):
        RecordedBackend(str(bad), name="x").generate([], Sampling())


def _write_two_turn_answers(folder):
    """An MT-bench style row: two user turns, a string answer after each."""
    turns = [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
        {"role": "assistant", "content": "Green."},
    ]
    (folder / "mt.jsonl").write_text(json.dumps({"question_id": 81, "messages": turns}) + "\n")


def test_multi_turn_recorded_answers_turn_by_turn(tmp_path):
    _write_two_turn_answers(tmp_path)
    backend = RecordedBackend(str(tmp_path), name="recorded")
    turns = [
        [
            {"role": "user", "content": "Name a colour."},
            {"role": "user", "content": "Another one?"},
        ],
        [
            {"role": "user", "content": "Unknown first."},
            {"role": "user", "content": "Another one?"},
        ],
    ]
    answers = answer_turn_by_turn(backend, turns, Sampling())
    assert [g.text for g in answers[0]] == ["Blue.", "Green."]
    assert answers[1][0].error and answers[1][1].error == "turn 2 not asked: turn 1 failed"


def test_covers_says_which_conversations_have_every_asked_turn_recorded(arena_hard, tmp_path):
    questions, _, path = arena_hard
    backend = RecordedBackend(str(path), name="gpt-4-0314")
    assert backend.covers(
        [
            [{"role": "user", "content": questions[0]["prompt"]}],
            [{"role": "user", "content": " " + questions[1]["prompt"].upper()}],
            [{"role": "user", "content": "A question nobody recorded."}],
        ]
    ) == [True, True, False]
    _write_two_turn_answers(tmp_path)
    mt = RecordedBackend(str(tmp_path), name="recorded")
    colour, another = (
        {"role": "user", "content": "Name a colour."},
        {"role": "user", "content": "Another one?"},
    )
    third = {"role": "user", "content": "And a third?"}
    # Both turns recorded; a third turn is not; the first alone is (its own prompt).
    assert mt.covers([[colour, another], [colour, another, third], [colour]]) == [
        True,
        False,
        True,
    ]
    # covers agrees with what answering turn by turn gets.
    answers = answer_turn_by_turn(mt, [[colour, another], [colour, another, third]], Sampling())
    assert [all(g.error is None for g in turns) for turns in answers] == [True, False]


def test_openai_content_parts_are_read_as_their_text(tmp_path):
    """Chat-completions exports write contents as parts: the judge must see the text, never
    a Python repr; a part that is not text is one line naming the file and line."""
    parts = [{"type": "text", "text": "Paris is the "}, {"type": "text", "text": "capital."}]
    row = {
        "uid": "q1",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
            {"role": "assistant", "content": parts},
        ],
    }
    (tmp_path / "a.jsonl").write_text(json.dumps(row) + "\n")
    backend = RecordedBackend(str(tmp_path / "a.jsonl"), name="m")
    [answer] = backend.generate([[{"role": "user", "content": "Capital of France?"}]], Sampling())
    assert answer.text == "Paris is the capital." and answer.error is None
    assert backend.answer_for_id("q1").text == "Paris is the capital."
    image = {"type": "image_url", "image_url": {"url": "data:..."}}
    row["messages"][1]["content"] = [*parts, image]
    (tmp_path / "b.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"b.jsonl:1: .*text parts.*image_url"):
        RecordedBackend(str(tmp_path / "b.jsonl"), name="m").answer_for_id("q1")
    (tmp_path / "c.jsonl").write_text(json.dumps({"messages": ["hi", "there"]}) + "\n")
    with pytest.raises(UserError, match="c.jsonl:1: not a recorded answer row"):
        RecordedBackend(str(tmp_path / "c.jsonl"), name="m").answer_for_id("q1")
