"""The interface every chat backend implements.

A backend answers a batch of conversations (lists of {"role", "content"}
messages ending with a user turn) and reports tokens, so callers can batch,
cache and count without knowing whether vLLM, an HTTP endpoint, transformers
or a file of recorded answers is behind it.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

from core.errors import UserError


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; their hash is part of every answer's cache key."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


CONSTRAINT_KINDS = ("regex", "json")


@dataclass(frozen=True)
class Constraint:
    """A reply format the backend enforces while decoding (structured outputs).

    `kind` "regex": `pattern` is a regular expression the whole reply matches (vLLM's
    structured outputs; xgrammar in transformers). `kind` "json": `pattern` is a JSON
    schema, as text (an OpenAI-compatible server's `response_format`).
    """

    kind: str
    pattern: str

    def __post_init__(self):
        if self.kind not in CONSTRAINT_KINDS:
            raise ValueError(f"constraint kind {self.kind!r}: expected one of {CONSTRAINT_KINDS}")


CONSTRAINT_CHOICES = ("auto", *CONSTRAINT_KINDS, "none")


def pick_constraint(requested: str, kinds: tuple[str, ...], name: str) -> str | None:
    """The constraint kind to use: `requested` (auto: the backend's preferred kind, or
    none when it has none); a kind the backend cannot enforce is a UserError."""
    if requested not in CONSTRAINT_CHOICES:
        raise UserError(
            f"{name}: constraint {requested!r} is not one of {', '.join(CONSTRAINT_CHOICES)}"
        )
    if requested == "none" or (requested == "auto" and not kinds):
        return None
    if requested == "auto":
        return kinds[0]
    if requested not in kinds:
        raise UserError(
            f"{name}: this backend cannot enforce a {requested} constraint"
            f" ({', '.join(kinds) or 'none'}; use constraint: none)"
        )
    return requested


@dataclass
class Generation:
    """One answer. `error` is set (and `text` empty) when the backend failed for this item."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    # "stop" (the model ended its answer) or "length" (cut at max_tokens); None if unknown.
    finish_reason: str | None = None


def failed(error: str) -> Generation:
    """A per-item failure: no text, the reason in `error`."""
    return Generation("", error=error)


def with_system_prompt(
    conversations: list[list[dict]], system_prompt: str | None
) -> list[list[dict]]:
    """Conversations with `system_prompt` as their first message (replacing any system
    message they had); unchanged when system_prompt is None."""
    if system_prompt is None:
        return conversations
    system = {"role": "system", "content": system_prompt}
    return [[system, *(m for m in c if m["role"] != "system")] for c in conversations]


class ChatBackend(ABC):
    """Answer batches of chat conversations.

    `resources` are the Dask worker resources a task using this backend must hold,
    as data (e.g. {"GPU": 1} for a local engine); the caller turns them into
    `client.submit(..., resources=backend.resources)`. Empty: runs anywhere.
    """

    name: str
    resources: dict[str, float] = {}
    # Constraint kinds `generate` can enforce, preferred first; () for none.
    constraint_kinds: tuple[str, ...] = ()

    @abstractmethod
    def generate(
        self,
        conversations: list[list[dict]],
        sampling: Sampling,
        constraint: Constraint | None = None,
    ) -> list[Generation]:
        """One Generation per conversation, in order; failures are reported, not raised.
        `constraint` must be of a kind in `constraint_kinds` (None: free text)."""

    def close(self) -> None:
        """Release engines, sessions or GPU memory."""
