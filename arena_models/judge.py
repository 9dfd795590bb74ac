"""The pairwise judge of Arena Learning: two answers in, a 1-10 score for each out.

The judge sees the dialogue history, the last instruction and the two answers,
rendered through a template file users can replace (fields {history},
{instruction}, {answer_a}, {answer_b}). Its reply must carry both scores
("Score A: 7/10"); a reply without them, or a backend failure, is retried with
sampling, then returned as an error with no scores, never as a made-up verdict.
The judge does not know which model wrote which answer, nor which game it is:
the battle stage swaps the order for game 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.backends.base import ChatBackend, Sampling
from arena_models.verdicts import explanation_of, find_pair_scores, label_pattern
from core.defaults import JUDGE_SEES_CHARS
from core.errors import UserError

DEFAULT_TEMPLATE = Path(__file__).parent / "prompts" / "pairwise.txt"
FIELDS = ("history", "instruction", "answer_a", "answer_b")
REQUIRED = ("instruction", "answer_a", "answer_b")
_FIELD = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
SCORE_A = label_pattern("A")
SCORE_B = label_pattern("B")
NO_HISTORY = "(none: this is the first turn)"


def load_template(path: str | Path | None = None) -> str:
    """The judge template text; a clear error when the file or a field is missing."""
    path = Path(path) if path else DEFAULT_TEMPLATE
    if not path.is_file():
        raise UserError(f"judge template {path} not found")
    text = path.read_text()
    missing = [f for f in REQUIRED if "{" + f + "}" not in text]
    if missing:
        raise UserError(
            f"judge template {path}: missing field(s) {', '.join('{' + f + '}' for f in missing)}"
        )
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[... answer truncated]"


@dataclass(frozen=True)
class JudgeItem:
    """One game as the judge sees it: `first` is shown as Answer A, `second` as B."""

    history: str
    instruction: str
    first: str
    second: str

    @classmethod
    def from_dialogue(
        cls, messages: list[dict], first: list[str], second: list[str], max_chars: int = JUDGE_SEES_CHARS
    ) -> JudgeItem:
        """Build a game from a conversation and each side's answers, one per user turn.

        Earlier turns go to the history with both sides' answers, so the judge
        compares the last answers knowing what each assistant said before.
        """
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users or len(first) != len(users) or len(second) != len(users):
            raise ValueError(
                f"{len(users)} user turns but {len(first)} and {len(second)} answers to judge"
            )
        lines = [f"System: {m['content']}" for m in messages if m["role"] == "system"]
        for turn, (question, a, b) in enumerate(zip(users[:-1], first, second), start=1):
            lines += [
                f"User (turn {turn}): {_clip(question, max_chars)}",
                f"Answer A (turn {turn}): {_clip(a, max_chars // 2)}",
                f"Answer B (turn {turn}): {_clip(b, max_chars // 2)}",
            ]
        return cls(
            "\n".join(lines) or NO_HISTORY,
            _clip(users[-1], max_chars),
            _clip(first[-1], max_chars),
            _clip(second[-1], max_chars),
        )


@dataclass
class Verdict:
    """Scores by position (`first` = Answer A as shown); both None when `error` is set."""

    score_first: float | None
    score_second: float | None
    explanation: str
    attempts: int
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw: list[str] = field(default_factory=list)


def parse_verdict(text: str) -> tuple[float, float] | None:
    """(score of Answer A, score of Answer B), each 1-10, or None if either is unreadable."""
    return find_pair_scores(text, SCORE_A, SCORE_B, 1, 10)


class PairwiseJudge:
    """Judge games in batches with one backend; `retries` more tries for unreadable replies."""

    def __init__(
        self,
        backend: ChatBackend,
        template: str | Path | None = None,
        *,
        retries: int = 2,
        max_tokens: int = 128,
        retry_temperature: float = 0.7,
        seed: int = 0,
    ):
        self.backend = backend
        self.template_path = str(template or DEFAULT_TEMPLATE)
        self.template = load_template(template)
        self.retries = retries
        self.max_tokens = max_tokens
        self.retry_temperature = retry_temperature
        self.seed = seed

    def render(self, item: JudgeItem) -> list[dict]:
        values = {
            "history": item.history,
            "instruction": item.instruction,
            "answer_a": item.first,
            "answer_b": item.second,
        }
        # One pass: an answer that contains "{answer_b}" is not expanded again.
        return [{"role": "user", "content": _FIELD.sub(lambda m: values[m[1]], self.template)}]

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        verdicts = [Verdict(None, None, "", 0) for _ in items]
        pending = list(range(len(items)))
        for attempt in range(self.retries + 1):
            # Greedy first; retries sample so that they can say something different.
            sampling = Sampling(
                temperature=0.0 if attempt == 0 else self.retry_temperature,
                max_tokens=self.max_tokens,
                seed=self.seed + attempt,
            )
            outputs = self.backend.generate([self.render(items[i]) for i in pending], sampling)
            still = []
            for i, out in zip(pending, outputs):
                v = verdicts[i]
                v.attempts = attempt + 1
                v.prompt_tokens += out.prompt_tokens
                v.completion_tokens += out.completion_tokens
                v.raw.append(out.text)
                scores = None if out.error else parse_verdict(out.text)
                if scores is None:
                    v.error = (
                        f"judge backend failed: {out.error}"
                        if out.error
                        else "no 'Score A' and 'Score B' from 1 to 10 in the judge's reply"
                    )
                    v.explanation = explanation_of(out.text)
                    still.append(i)
                else:
                    v.score_first, v.score_second = scores
                    v.error = None
                    v.explanation = explanation_of(out.text)
            pending = still
            if not pending:
                break
        for i in pending:
            verdicts[i].error += f" ({verdicts[i].attempts} attempts)"
        return verdicts
