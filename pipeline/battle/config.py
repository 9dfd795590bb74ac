"""Options of a battle run, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UserError

SCHEDULES = ("all-pairs", "target", "anchor", "sampled")
COMBINE_RULES = ("total", "consistent")


@dataclass(frozen=True)
class BattleConfig:
    """`schedule`: all-pairs (the paper's default), target (one model against `opponents`,
    default every other), anchor (every model against `anchor`), sampled (each model,
    or only `target` when set, meets `k` opponents per prompt, drawn with `seed`).
    `combine`: total (higher summed score over both games wins; equal is a tie) or
    consistent (FastChat: the games must agree, otherwise a tie)."""

    schedule: str = "all-pairs"
    target: str | None = None
    opponents: tuple[str, ...] = ()
    anchor: str | None = None
    k: int = 1
    seed: int = 0
    combine: str = "total"
    limit: int | None = None  # first N prompts (in prompt_id order: a stable sample)
    judge_template: str | None = None  # None: arena_models/prompts/pairwise.txt
    judge_retries: int = 2
    judge_max_tokens: int | None = None  # None: the judge entry's sampling.max_tokens
    max_answer_chars: int = 4000  # what the judge sees of each answer
    answer_chunk: int = 32  # prompts per answer task
    judge_chunk: int = 32  # games per judge task
    rejudge_errors: bool = False  # judge failed games again instead of reusing the error

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule {self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if self.combine not in COMBINE_RULES:
            raise UserError(
                f"combine rule {self.combine!r}: expected one of {', '.join(COMBINE_RULES)}"
            )
        if self.schedule == "target" and not self.target:
            raise UserError("schedule target needs --target MODEL")
        if self.schedule == "anchor" and not self.anchor:
            raise UserError("schedule anchor needs --anchor MODEL")
        if self.k < 1:
            raise UserError("--k must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.judge_retries < 0 or self.answer_chunk < 1 or self.judge_chunk < 1:
            raise UserError("retries must be >= 0 and chunk sizes >= 1")
