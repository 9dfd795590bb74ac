"""Answers recorded earlier (another run, a hosted model, a published benchmark) as a backend.

Files are JSONL rows with `messages` (user and assistant turns; an assistant
content may be a string or {"answer": ...} as in arena-hard-auto's model_answer
files), optionally `model` and an id (`uid`, `question_id`, `id` or `prompt_id`).
Each assistant turn is indexed by the user turns before it, two ways: their
prompt id (core.schemas.prompt_id) and their normalised text, so a
conversation finds its answer whatever pool it was read from. A conversation
with no recorded answer gets a per-item error, never a made-up reply; `covers`
tells a caller beforehand which conversations have their answers.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

from arena_models.backends.base import ChatBackend, Constraint, Generation, Sampling, failed
from arena_models.multiturn import pending_turns
from core.errors import UserError
from core.schemas import normalize_text, prompt_id

ID_FIELDS = ("uid", "question_id", "id", "prompt_id")


def _content(value) -> str:
    """A turn's text: a string, {"answer": ...} (arena-hard-auto) or OpenAI content parts
    ([{"type": "text", "text": ...}], joined); ValueError for what holds no text."""
    if isinstance(value, dict):
        return _content(value.get("answer", value.get("content", "")))
    if isinstance(value, list):
        kinds = [p.get("type") if isinstance(p, dict) else type(p).__name__ for p in value]
        if any(k != "text" or not isinstance(p.get("text"), str) for k, p in zip(kinds, value)):
            raise ValueError(f"content parts must all be text parts, got {kinds}")
        return "".join(p["text"] for p in value)
    return "" if value is None else str(value)


def _keys(user_turns: list[str]) -> tuple[str, str]:
    """(prompt id, normalised text) of a run of user turns."""
    return (
        prompt_id([{"role": "user", "content": t} for t in user_turns]),
        "text:" + normalize_text("\n".join(user_turns)),
    )


def _find(index: dict[str, str], users: list[str]) -> str | None:
    """The answer recorded after this run of user turns, or None."""
    return next((index[k] for k in _keys(users) if k in index), None)


class RecordedBackend(ChatBackend):
    """`answers`: JSONL files, folders of them or glob patterns; `model`: keep only rows
    whose `model` field equals it (None: every row)."""

    def __init__(self, answers: list[str] | str, name: str, model: str | None = None):
        self.name = name
        self.model = model
        self.files = expand_answer_files(answers)
        self._index: dict[str, str] | None = None

    def check(self) -> None:
        """Read every answer file now: a malformed row is a UserError before any work."""
        self._answers()

    def _answers(self) -> dict[str, str]:
        if self._index is None:
            self._index = {}
            for path in self.files:
                self._read(path, self._index)
            if not self._index:
                raise UserError(
                    f"model {self.name}: no recorded answers"
                    + (f" of model {self.model!r}" if self.model else "")
                    + f" in {', '.join(map(str, self.files))}"
                )
        return self._index

    def _read(self, path: Path, index: dict[str, str]) -> None:
        with open(path, "rb") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line.decode("utf-8"))
                    if self.model and row.get("model") != self.model:
                        continue
                    self._index_row(row, index)
                except (ValueError, KeyError, TypeError, AttributeError) as err:
                    raise UserError(
                        f"{path}:{line_no}: not a recorded answer row ({err})"
                    ) from None

    @staticmethod
    def _index_row(row: dict, index: dict[str, str]) -> None:
        messages = row["messages"]
        users: list[str] = []
        for m in messages:
            if m["role"] == "user":
                users.append(_content(m["content"]))
            elif m["role"] == "assistant" and users:
                for key in _keys(users):
                    index.setdefault(key, _content(m["content"]))
        row_id = next((row[f] for f in ID_FIELDS if row.get(f) is not None), None)
        if row_id is not None and users:
            first = next((m for m in messages if m["role"] == "assistant"), None)
            if first is not None:
                index.setdefault(f"id:{row_id}", _content(first["content"]))

    def answer_for_id(self, row_id: str) -> Generation:
        """The first recorded answer of the row whose uid/question_id/id is `row_id`."""
        text = self._answers().get(f"id:{row_id}")
        if text is None:
            return failed(f"{self.name}: no recorded answer for id {row_id}")
        return Generation(text, finish_reason="stop")

    def covers(self, conversations: list[list[dict]]) -> list[bool]:
        """Whether every turn answer_turn_by_turn asks of each conversation has a recorded
        answer, so a battle can leave out the prompts this model cannot answer."""
        index = self._answers()
        out = []
        for conversation in conversations:
            # Each pending turn is looked up by the user turns up to it, as generate sees them.
            asked = [
                [_content(m["content"]) for m in conversation[: i + 1] if m["role"] == "user"]
                for i in pending_turns(conversation)
            ]
            out.append(bool(asked) and all(_find(index, users) is not None for users in asked))
        return out

    def generate(
        self,
        conversations: list[list[dict]],
        sampling: Sampling,
        constraint: Constraint | None = None,
    ) -> list[Generation]:
        index = self._answers()
        out = []
        for conversation in conversations:
            users = [_content(m["content"]) for m in conversation if m["role"] == "user"]
            text = _find(index, users)
            if text is None:
                head = users[-1][:60] if users else ""
                out.append(failed(f"{self.name}: no recorded answer for prompt {head!r}"))
            else:
                # Recorded files carry no token counts: they stay 0 (unknown).
                out.append(Generation(text, finish_reason="stop"))
        return out


def expand_answer_files(patterns: list[str] | str) -> list[Path]:
    """JSONL files named by paths, folders or glob patterns; UserError if none."""
    patterns = [patterns] if isinstance(patterns, str) else patterns
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif any(c in pattern for c in "*?["):
            files.extend(Path(p) for p in sorted(glob.glob(str(path))))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"recorded answers: {pattern} does not exist")
    if not files:
        raise UserError(f"recorded answers: no .jsonl files in {', '.join(patterns)}")
    return files
