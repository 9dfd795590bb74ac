"""Every pool shape becomes one canonical conversation; bad rows name their reason."""

import json

import pytest

from core.schemas import prompt_id
from pipeline.ingest.shapes import RowRejected, to_conversation


def convert(row, max_chars=1000):
    messages, source_id, metadata = to_conversation(row, max_chars)
    return messages, source_id, json.loads(metadata)


def test_prompt_instruction_text_shapes():
    assert convert({"uid": "u1", "prompt": "Hi", "category": "c"}) == (
        [{"role": "user", "content": "Hi"}],
        "u1",
        {"category": "c"},
    )
    messages, _, _ = convert({"instruction": "Sum", "input": "1 2"})
    assert messages == [{"role": "user", "content": "Sum\n\n1 2"}]
    messages, _, _ = convert({"instruction": "Sum", "input": ""})
    assert messages == [{"role": "user", "content": "Sum"}]
    assert convert({"id": 3, "text": "T"})[:2] == ([{"role": "user", "content": "T"}], "3")


def test_multi_turn_stays_multi_turn():
    messages, source_id, _ = convert({"question_id": 81, "turns": ["First", "Second"]})
    assert messages == [{"role": "user", "content": "First"}, {"role": "user", "content": "Second"}]
    assert source_id == "81"


def test_chat_messages_and_sharegpt():
    chat = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
    assert convert({"messages": chat})[0] == chat
    share = [
        {"from": "system", "value": "S"},
        {"from": "human", "value": "Q"},
        {"from": "gpt", "value": "A"},
    ]
    assert convert({"conversations": share})[0] == chat
    assert prompt_id(chat) == prompt_id([dict(m) for m in chat])


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"prompt": ""}, "empty text in prompt"),
        ({"prompt": "   \n"}, "empty text in prompt"),
        ({"prompt": 3}, "wrong type: prompt is int"),
        ({"turns": "not a list"}, "wrong type: turns is str"),
        ({"turns": []}, "empty turns"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "unknown role 'wizard'"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "no user turn"),
        (
            {"conversations": [{"from": "human", "value": None}]},
            "wrong type: conversations[0].value",
        ),
        ({"title": "no text"}, "no text field"),
        (["a", "list"], "not a JSON object"),
        ({"prompt": "x" * 1001}, "too long: 1001 characters"),
        ({"prompt": "bad \ud800 surrogate"}, "invalid unicode"),
    ],
)
def test_rejections_say_why(row, reason):
    with pytest.raises(RowRejected, match=reason.replace("(", r"\(").replace("[", r"\[")):
        to_conversation(row, 1000)
