"""The pairwise judge of Arena Learning: two answers in, a 1-10 score for each out.

The judge sees the dialogue history, the last instruction and the two answers,
rendered through a template file users can replace (fields {history},
{instruction}, {answer_a}, {answer_b}). Its reply must carry both scores
("Score A: 7/10"); a reply without them, one cut off at max_tokens, or a backend
failure is retried with sampling, then returned as an error with no scores, never
as a made-up verdict. The judge does not know which model wrote which answer, nor
which game it is: the battle stage swaps the order for game 2.

Answer text cannot change how a verdict is read: in every field, lookalikes of the
template's bracketed delimiters, of "[[A]]" tokens and of the "Score A:" reply lines are
defanged before rendering (`neutralise`), so the prompt keeps exactly one of each, and
only the judge's reply is parsed, its own score lines first; two different scores for
one answer are an error (verdicts.read_pair_scores).

Where the backend can, the reply format is enforced while decoding (`constraint`:
a regex on vLLM and transformers, a JSON schema on an OpenAI-compatible
endpoint), so a weak judge can no longer fail to answer in form; the free-text
parser reads judges that cannot be constrained. A constraint fixes the format,
not the judgement: with `distributions`, the judge also reads its probability of
each score 1-10 at both score positions and reports the expected scores, which
separate answers that a weak judge scores alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.backends.base import (
    ChatBackend,
    Constraint,
    Generation,
    Sampling,
    pick_constraint,
)
from arena_models.verdicts import (
    VERDICT_REGEX,
    VERDICT_SCHEMA,
    explanation_of,
    label_pattern,
    parse_json_verdict,
    read_pair_scores,
)
from core.config_files import read_text_file
from core.defaults import JUDGE_SEES_CHARS
from core.errors import UserError

DEFAULT_TEMPLATE = Path(__file__).parent / "prompts" / "pairwise.txt"
FIELDS = ("history", "instruction", "answer_a", "answer_b")
REQUIRED = ("instruction", "answer_a", "answer_b")
_FIELD = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
SCORE_A = label_pattern("A")
SCORE_B = label_pattern("B")
NO_HISTORY = "(none: this is the first turn)"
SCORES = [str(s) for s in range(1, 11)]
CONSTRAINTS = {
    "regex": Constraint("regex", VERDICT_REGEX),
    "json": Constraint("json", json.dumps(VERDICT_SCHEMA, sort_keys=True)),
}

# The error of a game the judge never answered (endpoint down, timeout, engine error):
# unlike an unreadable reply, which is the judge's answer, a rerun asks again.
BACKEND_FAILED = "judge backend failed"


def judged_again(error: str | None, rejudge_errors: bool = False) -> bool:
    """Whether a cached verdict with this error is judged again on a rerun."""
    return error is not None and (rejudge_errors or error.startswith(BACKEND_FAILED))


def load_template(path: str | Path | None = None) -> str:
    """The judge template text; a clear error when the file or a field is missing."""
    path = Path(path) if path else DEFAULT_TEMPLATE
    if not path.is_file():
        found = "is a folder, not a file" if path.is_dir() else "not found"
        raise UserError(f"judge template {path} {found}")
    text = read_text_file(path)
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
        cls,
        messages: list[dict],
        first: list[str],
        second: list[str],
        max_chars: int = JUDGE_SEES_CHARS,
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
    """Scores by position (`first` = Answer A as shown); both None when `error` is set.
    `expected_*`: probability-weighted scores (None unless the judge computes them);
    `constraint`: the kind enforced ("regex", "json" or "none")."""

    score_first: float | None
    score_second: float | None
    explanation: str
    attempts: int
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw: list[str] = field(default_factory=list)
    expected_first: float | None = None
    expected_second: float | None = None
    constraint: str = "none"
    finish_reason: str | None = None


def read_verdict(text: str) -> tuple[tuple[float, float] | None, str | None]:
    """((score of Answer A, score of Answer B), None), each 1-10, from a free-text reply;
    (None, None) when a score is missing, (None, why) when one is ambiguous
    (verdicts.read_pair_scores)."""
    return read_pair_scores(text, SCORE_A, SCORE_B, 1, 10)


# Answer text that looks like the prompt's own structure: bracketed markers naming an
# answer or assistant ("[End of Answer A]", "[The End of Assistant A's Answer]"),
# MT-bench verdict tokens ("[[A]]", "[[7]]") and our reply's score labels ("Score A:").
_MARKER = re.compile(
    r"\[\s*([^\[\]\n]{0,60}?\b(?:answer|assistant|response)\b[^\[\]\n]{0,60}?)\s*\]",
    re.IGNORECASE,
)
_VERDICT_TOKEN = re.compile(r"\[\[\s*([^\[\]\n]{1,20}?)\s*\]\]")
_SCORE_LABEL = re.compile(r"\b(score)(\s*)([AB])(\s*):", re.IGNORECASE)


def neutralise(text: str, markers: tuple[str, ...] = ()) -> str:
    """`text` (an answer, question or history) with delimiter lookalikes defanged, so that
    it cannot close its block early or pose as the verdict: brackets become parentheses
    ("(End of Answer A)"), "[[A]]" becomes "(A)", "Score A:" becomes "Score (A):". The
    template's own bracketed `markers` are defanged whatever they say."""
    for marker in markers:
        inner = r"\s+".join(re.escape(w) for w in marker.strip("[] ").split())
        text = re.sub(r"\[\s*(" + inner + r")\s*\]", r"(\1)", text, flags=re.IGNORECASE)
    text = _VERDICT_TOKEN.sub(r"(\1)", text)
    text = _MARKER.sub(r"(\1)", text)
    return _SCORE_LABEL.sub(r"\1\2(\3)\4:", text)


def template_markers(template: str) -> tuple[str, ...]:
    """The bracketed delimiters a template uses around its fields ("[Start of Answer A]")."""
    return tuple(sorted(set(re.findall(r"\[[^\[\]\n{}]{1,80}\]", _FIELD.sub("", template)))))


class PairwiseJudge:
    """Judge games in batches with one backend; `retries` more tries for unreadable replies.
    `constraint`: auto (the backend's preferred kind), regex, json or none;
    `distributions`: also compute expected scores (backends with token probabilities)."""

    def __init__(
        self,
        backend: ChatBackend,
        template: str | Path | None = None,
        *,
        retries: int = 2,
        max_tokens: int = 128,
        retry_temperature: float = 0.7,
        seed: int = 0,
        constraint: str = "auto",
        distributions: bool = False,
    ):
        self.backend = backend
        self.template_path = str(template or DEFAULT_TEMPLATE)
        self.template = load_template(template)
        self.markers = template_markers(self.template)
        self.retries = retries
        self.max_tokens = max_tokens
        self.retry_temperature = retry_temperature
        self.seed = seed
        kind = pick_constraint(constraint, backend.constraint_kinds, backend.name)
        self.constraint = CONSTRAINTS.get(kind) if kind else None
        if distributions and not hasattr(backend, "continuation_probabilities"):
            raise UserError(
                f"{backend.name}: expected scores need a backend with token probabilities"
            )
        if distributions and kind == "json":
            raise UserError(f"{backend.name}: expected scores read the 'Score A:' form, not JSON")
        self.distributions = distributions

    def render(self, item: JudgeItem) -> list[dict]:
        values = {
            "history": item.history,
            "instruction": item.instruction,
            "answer_a": item.first,
            "answer_b": item.second,
        }
        # Every field is user text: none may open, close or fake a block of the template.
        values = {k: neutralise(v, self.markers) for k, v in values.items()}
        # One pass: an answer that contains "{answer_b}" is not expanded again.
        return [{"role": "user", "content": _FIELD.sub(lambda m: values[m[1]], self.template)}]

    def read(self, out: Generation) -> tuple[tuple[float, float] | None, str, str | None]:
        """(scores, explanation, error) of one reply. Answer text inside the prompt
        cannot reach this: only the judge's own reply is read."""
        if out.error:
            return None, "", f"{BACKEND_FAILED}: {out.error}"
        if out.finish_reason == "length":
            return (
                None,
                explanation_of(out.text),
                f"verdict cut off at max_tokens ({self.max_tokens})",
            )
        if self.constraint and self.constraint.kind == "json":
            parsed = parse_json_verdict(out.text)
            if parsed is None:
                return (
                    None,
                    out.text[:2000],
                    "judge reply is not a JSON verdict with score_a, score_b 1-10",
                )
            return parsed[:2], parsed[2], None
        scores, error = read_verdict(out.text)
        if scores is None and error is None:
            error = "no 'Score A' and 'Score B' from 1 to 10 in the judge's reply"
        return scores, explanation_of(out.text), error

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        kind = self.constraint.kind if self.constraint else "none"
        verdicts = [Verdict(None, None, "", 0, constraint=kind) for _ in items]
        pending = list(range(len(items)))
        for attempt in range(self.retries + 1):
            # Greedy first; retries sample so that they can say something different.
            sampling = Sampling(
                temperature=0.0 if attempt == 0 else self.retry_temperature,
                max_tokens=self.max_tokens,
                seed=self.seed + attempt,
            )
            outputs = self.backend.generate(
                [self.render(items[i]) for i in pending], sampling, self.constraint
            )
            still = []
            for i, out in zip(pending, outputs):
                v = verdicts[i]
                v.attempts = attempt + 1
                v.prompt_tokens += out.prompt_tokens
                v.completion_tokens += out.completion_tokens
                v.raw.append(out.text)
                v.finish_reason = out.finish_reason
                scores, v.explanation, v.error = self.read(out)
                if scores is None:
                    still.append(i)
                else:
                    v.score_first, v.score_second = scores
            pending = still
            if not pending:
                break
        for i in pending:
            verdicts[i].error += f" ({verdicts[i].attempts} attempts)"
        if self.distributions:
            self._expected(items, verdicts)
        return verdicts

    def _expected(self, items: list[JudgeItem], verdicts: list[Verdict]) -> None:
        """Expected scores: E[score A] after "Score A: ", then E[score B] after the
        judge's own "Score A: <a>/10" line (grouped by a, one call per value)."""
        judged = [i for i, v in enumerate(verdicts) if v.error is None]
        if not judged:
            return
        probs, _ = self.backend.continuation_probabilities(
            [self.render(items[i]) for i in judged], "Score A: ", SCORES
        )
        for i, p in zip(judged, probs):
            verdicts[i].expected_first = _mean(p)
        by_first: dict[float, list[int]] = {}
        for i in judged:
            by_first.setdefault(verdicts[i].score_first, []).append(i)
        for first, group in by_first.items():
            probs, _ = self.backend.continuation_probabilities(
                [self.render(items[i]) for i in group], f"Score A: {first:g}/10\nScore B: ", SCORES
            )
            for i, p in zip(group, probs):
                verdicts[i].expected_second = _mean(p)


def _mean(probabilities: list[float]) -> float:
    """The expected score of a distribution over 1..10."""
    return round(sum(k * q for k, q in enumerate(probabilities, start=1)), 4)
