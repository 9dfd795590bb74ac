"""Arrow schemas of the rows that cross stage boundaries, and the helpers that derive ids.

A canonical conversation keeps every turn in order. Prompt pools often carry user
turns only (MT-bench `turns`); those stay consecutive `user` messages, and a model
answers them one by one, each answer conditioned on its own earlier answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

import pyarrow as pa

ROLES = ("system", "user", "assistant")

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

CONVERSATION = pa.schema(
    [
        ("prompt_id", pa.string()),  # content hash of `messages`
        ("messages", pa.list_(MESSAGE)),
        ("source", pa.string()),  # the pool the row came from (file stem)
        ("source_id", pa.string()),  # the row's own id in that pool, if it had one
        ("source_file", pa.string()),
        ("source_line", pa.int64()),  # 1-based line (JSONL) or row index (JSON, Parquet)
        ("metadata", pa.string()),  # every other field of the row, as JSON
    ]
)

QUARANTINE = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.string()),  # the start of the offending row, for a person to look at
    ]
)

BATTLE = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("judge", pa.string()),
        ("game", pa.int8()),  # 1, or 2 for the game with the answers swapped
        ("score_a", pa.float32()),
        ("score_b", pa.float32()),
        ("winner", pa.string()),  # model_a | model_b | tie; null when the judge failed
        ("error", pa.string()),
        ("explanation", pa.string()),
        ("raw", pa.string()),  # the judge's reply, verbatim
        ("constraint", pa.string()),  # regex | json | none: how the reply format was enforced
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),  # the judge's, over every attempt
        ("completion_tokens", pa.int64()),
    ]
)


def short_hash(data: str | bytes, nbytes: int = 16) -> str:
    """Hex BLAKE2b digest: stable across processes and platforms (unlike hash())."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.blake2b(data, digest_size=nbytes).hexdigest()


def prompt_id(messages: list[dict]) -> str:
    """Content hash of a conversation: the same turns give the same id anywhere."""
    canonical = json.dumps(
        [[m["role"], m["content"]] for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return short_hash(canonical)


_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Text as compared for exact dedup: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def prompt_text(messages: list[dict]) -> str:
    """What a conversation asks: its user turns, joined. Used for dedup and embedding."""
    return "\n".join(m["content"] for m in messages if m["role"] == "user")
