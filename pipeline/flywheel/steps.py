"""A flywheel step: one named piece of an iteration's plan (`Step`) and what it made
(`StepResult`), which OUT/flywheel.json records under the step's name.

An iteration is a list of steps planned before any runs (pipeline/flows/flywheel.py);
a step reads the results of the steps before it, never their folders by guesswork, so
a rerun that finds a step recorded (state.py) hands its recorded result on instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class StepResult:
    """What a finished step made. The paths are its outputs: a rerun trusts the step only
    while they are there (and, for a stage folder, pass their markers' checks)."""

    line: str  # the step in one line: the log, `arena flywheel status`, report.md
    folder: str | None = None  # a stage folder or shard it wrote (or the pool it names)
    run: str | None = None  # a battle run
    checkpoint: str | None = None  # a trained model; None: nothing was trained
    leaderboard: str | None = None
    rows: int | None = None  # rows in `folder`
    # Numbers for reports and readers of flywheel.json: games, dropped pairs, losses,
    # ratings. A JSON mapping, written beside the fields above.
    details: dict = field(default_factory=dict)

    @property
    def outputs(self) -> list[Path]:
        return [Path(p) for p in (self.folder, self.run, self.checkpoint, self.leaderboard) if p]

    def as_record(self) -> dict:
        """The step's entry in flywheel.json: the fields that are set, the details beside
        them (one flat mapping, so readers of the file see `rows`, `trained_rows`, ...)."""
        named = {k: v for k, v in asdict(self).items() if k != "details" and v is not None}
        return {**self.details, **named}

    @classmethod
    def from_record(cls, record: dict) -> StepResult:
        """The result an entry written by `as_record` holds."""
        names = {f.name for f in fields(cls)} - {"details"}
        return cls(
            **{k: v for k, v in record.items() if k in names},
            details={k: v for k, v in record.items() if k not in names},
        )


@dataclass(frozen=True)
class Step:
    """One step of an iteration's plan: `work(run, *args)` makes its result."""

    name: str  # its key in flywheel.json: "pool", "slice D1", "sft.battle", "rate", ...
    work: Callable[..., StepResult]
    args: tuple = ()
    # A policy's training: the roster name its checkpoint joins as, the model every later
    # step battles, trains and re-rates.
    policy: str | None = None
    # Runs only if this earlier step trained a model (rl needs a reward model); else it
    # is skipped and not recorded.
    needs_model_of: str | None = None
