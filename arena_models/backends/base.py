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

    @abstractmethod
    def generate(self, conversations: list[list[dict]], sampling: Sampling) -> list[Generation]:
        """One Generation per conversation, in order; failures are reported, not raised."""

    def close(self) -> None:
        """Release engines, sessions or GPU memory."""
