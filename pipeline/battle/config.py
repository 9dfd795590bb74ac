"""Options of a battle run, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from arena_models.roster import SCORINGS
from core.defaults import JUDGE_SEES_CHARS
from core.errors import UserError

SCHEDULES = ("all-pairs", "target", "anchor", "sampled")
COMBINE_RULES = ("total", "consistent")


@dataclass(frozen=True)
class BattleConfig:
    """`schedule`: all-pairs (the paper's default), target (one model against `opponents`,
    default every other), anchor (every model against `anchor`), sampled (each model,
    or only `target` when set, meets `k` opponents per prompt, drawn with `seed`).
    `combine`: total (higher summed score over both games wins; equal is a tie) or
    consistent (FastChat: the games must agree, otherwise a tie)."""

    schedule: str = field(default="all-pairs", metadata={"choices": SCHEDULES})
    target: str | None = field(
        default=None, metadata={"help": "target/sampled: the model that battles"}
    )
    opponents: tuple[str, ...] = field(
        default=(), metadata={"help": "target: comma-separated (default: all others)"}
    )
    anchor: str | None = field(
        default=None, metadata={"help": "anchor: every model meets this one"}
    )
    k: int = field(default=1, metadata={"help": "sampled: opponents per model per prompt"})
    seed: int = field(default=0, metadata={"help": "sampled: seed of the draw"})
    combine: str = field(
        default="total",
        metadata={
            "help": "total: higher summed score of both games wins; consistent: games must agree, else tie",
            "choices": COMBINE_RULES,
        },
    )
    answerable_only: bool = field(
        default=True,
        metadata={
            "help": "battle only on prompts every roster model can answer"
            " (recorded answers cover only their own prompts)"
        },
    )
    limit: int | None = field(
        default=None,
        metadata={
            "help": "first N prompts (prompt_id order: a stable sample),"
            " counted after --answerable-only"
        },
    )
    judge_template: str | None = field(
        default=None, metadata={"help": "judge prompt template file (default: the packaged one)"}
    )
    judge_retries: int = field(default=2, metadata={"help": "retries of unreadable verdicts"})
    judge_max_tokens: int | None = field(
        default=None, metadata={"help": "unset: the judge entry's sampling.max_tokens"}
    )
    judge_scoring: str | None = field(
        default=None,
        metadata={
            "help": "discrete: the judge's written 1-10 scores (the paper's); expected: its"
            " probability-weighted scores (vLLM and transformers judges); unset: the judge"
            " entry's `scoring`",
            "choices": SCORINGS,
        },
    )
    max_answer_chars: int = field(
        default=JUDGE_SEES_CHARS, metadata={"help": "answer text the judge sees"}
    )
    answer_chunk: int = field(default=32, metadata={"help": "prompts per answer task"})
    judge_chunk: int = field(default=32, metadata={"help": "games per judge task"})
    rejudge_errors: bool = field(
        default=False, metadata={"help": "judge failed games again instead of reusing the error"}
    )

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
        # A flag of another schedule would be silently ignored: say so instead.
        for flag, value, schedules in (
            ("--opponents", self.opponents, ("target",)),
            ("--target", self.target, ("target", "sampled")),
            ("--anchor", self.anchor, ("anchor",)),
            ("--k", self.k != 1, ("sampled",)),
            ("--seed", self.seed != 0, ("sampled",)),
        ):
            if value and self.schedule not in schedules:
                raise UserError(
                    f"{flag} applies to --schedule {' or '.join(schedules)}, not {self.schedule}"
                )
        if self.target and self.target in self.opponents:
            raise UserError(
                f"--opponents: {self.target} is the target; it cannot be its own opponent"
            )
        if self.k < 1:
            raise UserError("--k must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.judge_scoring not in (None, *SCORINGS):
            raise UserError(
                f"judge scoring {self.judge_scoring!r}: expected one of {', '.join(SCORINGS)}"
            )
        if self.judge_retries < 0 or self.answer_chunk < 1 or self.judge_chunk < 1:
            raise UserError("retries must be >= 0 and chunk sizes >= 1")
        if self.max_answer_chars < 1:
            raise UserError(f"--max-answer-chars {self.max_answer_chars}: expected at least 1")
        if self.judge_max_tokens is not None and self.judge_max_tokens < 1:
            raise UserError(f"--judge-max-tokens {self.judge_max_tokens}: expected at least 1")
