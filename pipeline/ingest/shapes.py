"""Every pool shape we read, turned into one canonical conversation.

Accepted shapes, first match wins: chat `messages` (role/content), ShareGPT
`conversations` (from/value), `turns` (a list of user turns), `prompt`,
`instruction` (+ optional `input`), `text`; a message's content may be OpenAI-style text
parts, joined. A row that fits none, or that holds
empty text or values of the wrong type, raises RowRejected with the reason.
"""

from __future__ import annotations

import json

from core.schemas import ROLES

ID_FIELDS = ("source_id", "question_id", "uid", "id", "prompt_id")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


class RowRejected(ValueError):
    """A row that cannot become a conversation; the message is the quarantine reason."""


def _text(value, field: str) -> str:
    if not isinstance(value, str):
        raise RowRejected(f"wrong type: {field} is {type(value).__name__}, expected string")
    if not value.strip():
        raise RowRejected(f"empty text in {field}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RowRejected(f"invalid unicode in {field} (lone surrogate)") from None
    return value


def _content(value, field: str) -> str:
    """A message's text; OpenAI-style content parts ([{"type": "text", "text": ...}]) are
    joined, and a part that is not text (an image) rejects the row: we battle on text."""
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(_list(value, field)):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RowRejected(f"not a text part: {field}[{i}] is {kind!r}")
            texts.append(part.get("text"))
        if not all(isinstance(t, str) for t in texts):
            raise RowRejected(f"wrong type: {field} holds a text part whose text is not a string")
        value = "".join(texts)
    return _text(value, field)


def _list(value, field: str) -> list:
    if not isinstance(value, list):
        raise RowRejected(f"wrong type: {field} is {type(value).__name__}, expected list")
    if not value:
        raise RowRejected(f"empty {field}")
    return value


def _chat(turns: list, field: str, role_key: str, text_key: str, roles: dict) -> list[dict]:
    messages = []
    for i, turn in enumerate(_list(turns, field)):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise RowRejected(f"wrong type: {where} is {type(turn).__name__}, expected object")
        role = roles.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise RowRejected(f"unknown role {turn.get(role_key)!r} in {where}")
        messages.append(
            {"role": role, "content": _content(turn.get(text_key), f"{where}.{text_key}")}
        )
    if not any(m["role"] == "user" for m in messages):
        raise RowRejected(f"no user turn in {field}")
    return messages


def _messages(row: dict) -> tuple[list[dict], tuple[str, ...]]:
    """The conversation and the fields it consumed. A null field is an absent one: a
    Parquet file of several shapes holds nulls in every other shape's columns."""
    given, row = row, {k: v for k, v in row.items() if v is not None}
    if "messages" in row:
        roles = {r: r for r in ROLES}
        return _chat(row["messages"], "messages", "role", "content", roles), ("messages",)
    if "conversations" in row:
        return _chat(row["conversations"], "conversations", "from", "value", SHAREGPT_ROLES), (
            "conversations",
        )
    if "turns" in row:
        turns = _list(row["turns"], "turns")
        return [
            {"role": "user", "content": _text(t, f"turns[{i}]")} for i, t in enumerate(turns)
        ], ("turns",)
    if "prompt" in row:
        return [{"role": "user", "content": _text(row["prompt"], "prompt")}], ("prompt",)
    if "instruction" in row:
        text = _text(row["instruction"], "instruction")
        extra = row.get("input")
        if extra is not None and not isinstance(extra, str):
            raise RowRejected(f"wrong type: input is {type(extra).__name__}, expected string")
        if extra and extra.strip():
            text = f"{text}\n\n{extra}"
        return [{"role": "user", "content": text}], ("instruction", "input")
    if "text" in row:
        return [{"role": "user", "content": _text(row["text"], "text")}], ("text",)
    for field in ("messages", "conversations", "turns", "prompt", "instruction", "text"):
        if field in given:  # only null text fields: say which
            kind = "list" if field in ("messages", "conversations", "turns") else "string"
            raise RowRejected(f"wrong type: {field} is NoneType, expected {kind}")
    raise RowRejected(
        "no text field: expected one of messages, conversations, turns, prompt, instruction, text"
    )


def to_conversation(row, max_chars: int) -> tuple[list[dict], str | None, str]:
    """(messages, source_id, metadata JSON) for a decoded row, or RowRejected."""
    if not isinstance(row, dict):
        raise RowRejected(f"not a JSON object but {type(row).__name__}")
    messages, consumed = _messages(row)
    size = sum(len(m["content"]) for m in messages)
    if size > max_chars:
        raise RowRejected(f"too long: {size} characters > limit {max_chars}")
    id_field = next((f for f in ID_FIELDS if row.get(f) is not None), None)
    source_id = None if id_field is None else str(row[id_field])
    skip = set(consumed) | {id_field}
    metadata = {k: v for k, v in row.items() if k not in skip}
    return messages, source_id, json.dumps(metadata, ensure_ascii=False, default=str)
