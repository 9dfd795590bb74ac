"""Difficulty of an instruction, 0-10, judged by an LLM (the Hard eval set of WizardArena).

The prompt is a template file (`{instruction}` is replaced) that users can swap.
Two modes:
- "generate": the judge writes "Difficulty: N", in that form by construction
  where the backend enforces a constraint (a regex, or a JSON schema on an
  endpoint); a reply with no readable score in 0-10, or one cut off at
  max_tokens, is retried with sampling, then recorded as an error with a null
  score, never as a made-up number.
- "expected" (backends that expose next-token probabilities): the judge's
  probability of each score 0..10 after "Difficulty: ", and the score is its
  expectation (G-Eval style). If the judge puts under `min_mass` of its
  probability on any score at all, the row is an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from arena_models.backends.base import (
    ChatBackend,
    Constraint,
    Generation,
    Sampling,
    pick_constraint,
)
from core.config_files import read_text_file
from core.defaults import JUDGE_SEES_CHARS
from core.errors import UserError

DEFAULT_TEMPLATE = Path(__file__).parent / "prompts" / "difficulty.txt"
SCORE = re.compile(
    r"difficulty\W{0,3}(?:is\s+|of\s+)?(\d{1,2}(?:\.\d+)?)(?:\s*/\s*10)?", re.IGNORECASE
)
BARE = re.compile(r"^\s*(\d{1,2}(?:\.\d+)?)\s*(?:/\s*10)?\s*$")
CONSTRAINTS = {
    "regex": Constraint("regex", "Difficulty: (10|[0-9])"),
    "json": Constraint(
        "json",
        json.dumps(
            {
                "type": "object",
                "properties": {"difficulty": {"type": "integer", "minimum": 0, "maximum": 10}},
                "required": ["difficulty"],
                "additionalProperties": False,
            }
        ),
    ),
}


def parse_difficulty(text: str) -> float | None:
    """The score in a judge reply, or None. Accepts 'Difficulty: 7', 'difficulty is 7/10', '7'."""
    match = SCORE.search(text) or BARE.match(text)
    if not match:
        return None
    value = float(match.group(1))
    return value if 0 <= value <= 10 else None


@dataclass
class DifficultyResult:
    score: float | None
    raw: str
    attempts: int
    error: str | None = None


class DifficultyScorer:
    def __init__(
        self,
        backend: ChatBackend,
        template: Path = DEFAULT_TEMPLATE,
        retries: int = 2,
        max_tokens: int = 16,
        seed: int = 0,
        mode: str = "generate",
        min_mass: float = 0.5,
        max_instruction_chars: int = JUDGE_SEES_CHARS,
        constraint: str = "auto",
    ):
        if mode not in ("generate", "expected"):
            raise UserError(f"difficulty mode {mode!r} is not one of expected, generate")
        if mode == "expected" and not hasattr(backend, "continuation_probabilities"):
            raise UserError(
                f"{backend.name}: this backend gives no token probabilities; use mode generate"
            )
        self.mode = mode
        kind = pick_constraint(constraint, backend.constraint_kinds, backend.name)
        self.constraint = CONSTRAINTS[kind] if kind else None
        self.min_mass = min_mass
        # The head of a very long instruction shows its difficulty; the rest only costs compute.
        self.max_instruction_chars = max_instruction_chars
        self.backend = backend
        self.template = read_text_file(template)
        if "{instruction}" not in self.template:
            raise UserError(f"{template}: the difficulty template needs an {{instruction}} field")
        self.retries = retries
        self.max_tokens = max_tokens
        self.seed = seed

    def prompt(self, instruction: str) -> list[dict]:
        if len(instruction) > self.max_instruction_chars:
            instruction = instruction[: self.max_instruction_chars] + " [...]"
        return [{"role": "user", "content": self.template.replace("{instruction}", instruction)}]

    def score(self, instructions: list[str]) -> list[DifficultyResult]:
        if self.mode == "expected":
            return self._expected(instructions)
        return self._generate(instructions)

    def _expected(self, instructions: list[str]) -> list[DifficultyResult]:
        scores = [str(s) for s in range(11)]
        probs, mass = self.backend.continuation_probabilities(
            [self.prompt(i) for i in instructions], "Difficulty: ", scores
        )
        results = []
        for p, m in zip(probs, mass):
            shown = " ".join(f"{s}:{q:.2f}" for s, q in zip(scores, p))
            if m < self.min_mass:
                results.append(
                    DifficultyResult(None, shown, 1, f"judge puts only {m:.0%} on any score")
                )
            else:
                results.append(
                    DifficultyResult(round(sum(k * q for k, q in enumerate(p)), 3), shown, 1)
                )
        return results

    def read(self, out: Generation) -> tuple[float | None, str | None]:
        """(score, error) of one reply."""
        if out.error:
            return None, out.error
        if out.finish_reason == "length":
            return None, f"reply cut off at max_tokens ({self.max_tokens})"
        if self.constraint and self.constraint.kind == "json":
            try:
                score = float(json.loads(out.text)["difficulty"])
            except (ValueError, KeyError, TypeError):
                score = None
        else:
            score = parse_difficulty(out.text)
        if score is None or not 0 <= score <= 10:
            return None, "no score 0-10 in reply"
        return score, None

    def _generate(self, instructions: list[str]) -> list[DifficultyResult]:
        results: list[DifficultyResult | None] = [None] * len(instructions)
        pending = list(range(len(instructions)))
        for attempt in range(self.retries + 1):
            # The first try is greedy; retries sample, so they can say something else.
            sampling = Sampling(
                temperature=0.0 if attempt == 0 else 0.7,
                max_tokens=self.max_tokens,
                seed=self.seed + attempt,
            )
            outputs = self.backend.generate(
                [self.prompt(instructions[i]) for i in pending], sampling, self.constraint
            )
            still = []
            for i, out in zip(pending, outputs):
                score, error = self.read(out)
                results[i] = DifficultyResult(score, out.text, attempt + 1, error)
                if score is None:
                    still.append(i)
            pending = still
            if not pending:
                break
        return results  # type: ignore[return-value]
