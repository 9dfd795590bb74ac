"""A flywheel config: who is trained, against whom, on which slices, with which thresholds
and training settings. Read from YAML; every number defaults to the paper's.

Per-iteration numbers are lists: the value for iteration i is the i-th item, or the
last one when the list is shorter (`sft_gap: [3, 1]`: 3 in the first iteration, then 1).
The training phases (`phases`: sft, dpo, reward, rl) run in that order. Iteration i takes
the next `len(data phases)` slices in phase order, so with the paper's phases it trains
SFT on D1, DPO on D2 and the reward model on D3, then D4..D6.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from core.config_files import check_mapping, read_yaml_mapping
from core.defaults import JUDGE, JUDGE_ROSTER
from core.errors import UserError
from pipeline.battle.config import COMBINE_RULES
from pipeline.flywheel.training import TrainConfig

CONFIGS = Path(__file__).resolve().parent / "configs"
PHASES = ("sft", "dpo", "reward", "rl")  # training phases, in the method's order
DATA_PHASES = ("sft", "dpo", "reward")  # each battles on a slice of its own
MAX_GAP = 9.0  # scores are 1-10


@dataclass(frozen=True)
class FlywheelConfig:
    target: str  # the roster entry trained (its path is the first base model)
    roster: str = "demo"  # battle roster: the target and its opponents
    opponents: tuple[str, ...] = ()  # default: every other roster model
    judge_roster: str = JUDGE_ROSTER
    judge: str = JUDGE
    # How the judge scores the battles that select data (discrete | expected); None:
    # the judge entry's own. The re-rating always uses the entry's own, like `arena run`.
    judge_scoring: str | None = None
    pool: str | None = None  # training pool: a conversation folder (or pool files)
    decontaminate_against: tuple[str, ...] = ()  # eval sets; () when the pool is clean
    evalset: str | None = None  # where the checkpoints are re-rated
    cache: str | None = None  # answer and verdict cache (default OUT/_cache)
    slices: int = 9  # the paper's D1..D9
    slice_seed: int = 0
    slice_prompts: int | None = None  # battle prompts per slice (None: every answerable one)
    rate_prompts: int | None = None  # eval-set prompts of the re-rating (None: all)
    phases: tuple[str, ...] = PHASES
    sft_gap: tuple[float, ...] = (3.0, 1.0)  # paper: 3 in the first iteration, then 1
    dpo_gap: tuple[float, ...] = (2.0,)  # paper: 2
    reward_gap: tuple[float, ...] = (2.0,)  # reward pairs are chosen as DPO's
    combine: str = "total"  # how a pair's two games make a winner (BattleConfig.combine)
    bootstrap: int = 100  # rounds of the before/after leaderboard
    train: dict = field(default_factory=dict)  # TrainConfig keys for every kind
    train_by_kind: dict = field(default_factory=dict)  # {kind: TrainConfig keys}
    shard_rows: int = 10_000
    jsonl: bool = False  # also write the shards as JSONL
    seed: int = 0
    source: str | None = None  # the file it was read from

    def __post_init__(self):
        unknown = [p for p in self.phases if p not in PHASES]
        if unknown or not self.phases:
            raise UserError(f"phases {list(self.phases)}: expected some of {', '.join(PHASES)}")
        if "rl" in self.phases and "reward" not in self.phases:
            raise UserError("phase rl needs phase reward: its reward model scores the policy")
        for name in ("sft_gap", "dpo_gap", "reward_gap"):
            values = getattr(self, name)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if not values or not numbers or any(not 0 <= v <= MAX_GAP for v in values):
                raise UserError(
                    f"{name} {list(values)}: expected score gaps between 0 and {MAX_GAP:g}"
                )

        if self.combine not in COMBINE_RULES:
            raise UserError(f"combine {self.combine!r}: expected one of {', '.join(COMBINE_RULES)}")
        if self.judge_scoring not in (None, "discrete", "expected"):
            raise UserError(
                f"judge_scoring {self.judge_scoring!r}: expected discrete, expected or null"
            )
        if self.slices < 1:
            raise UserError("slices must be at least 1")
        for name in ("slice_prompts", "rate_prompts"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1 (or null: all)")

        unknown = sorted(set(self.train_by_kind) - set(PHASES))
        if unknown:
            raise UserError(
                f"train_by_kind: {unknown[0]} is no phase (phases: {', '.join(PHASES)})"
            )
        for kind in self.phases:  # every trainer's settings, checked now, not at its turn
            TrainConfig.from_dict(kind, {**self.train, **self.train_by_kind.get(kind, {})})
        if self.target in self.opponents:
            raise UserError(
                f"opponents: {self.target} is the target; it cannot be its own opponent"
            )
        if self.bootstrap < 0 or self.shard_rows < 1:
            raise UserError("bootstrap must be 0 or more, shard_rows at least 1")
        if self.iterations < 1:
            raise UserError(
                f"{self.slices} slices hold no iteration of phases {', '.join(self.phases)}"
                f" ({len(self.data_phases)} slices each)"
            )

    @property
    def data_phases(self) -> tuple[str, ...]:
        return tuple(p for p in self.phases if p in DATA_PHASES)

    @property
    def iterations(self) -> int:
        return self.slices // len(self.data_phases)

    def gap(self, kind: str, iteration: int) -> float:
        values = getattr(self, f"{kind}_gap")
        return float(values[min(iteration, len(values)) - 1])

    def slice_of(self, kind: str, iteration: int) -> int:
        """The 1-based slice phase `kind` battles on in `iteration`."""
        per = len(self.data_phases)
        return (iteration - 1) * per + self.data_phases.index(kind) + 1

    def check_iteration(self, iteration: int) -> None:
        if not 1 <= iteration <= self.iterations:
            raise UserError(
                f"iteration {iteration}: {self.slices} slices give iterations 1..{self.iterations}"
            )

    @classmethod
    def load(cls, path: str | Path, overrides: dict | None = None) -> FlywheelConfig:
        """A config file (or a packaged name: demo, paper); `overrides` win. Relative
        paths inside the file are relative to the file's folder, those in `overrides`
        are taken as given."""
        file = Path(path)
        if not file.exists() and (CONFIGS / f"{path}.yaml").exists():
            file = CONFIGS / f"{path}.yaml"
        if not file.is_file():
            raise UserError(f"{path}: no such flywheel config file or packaged config")
        data = read_yaml_mapping(file, "flywheel settings")
        if "stages" in data:  # the key's name before it was `phases`
            raise UserError(f"{file}: `stages` is now `phases` (some of {', '.join(PHASES)})")
        check_mapping(cls, data, str(file), not_settable=("source",))
        if "target" not in data:
            raise UserError(f"{file}: `target` (the roster entry to train) is required")
        for name in ("pool", "evalset", "cache", "roster", "judge_roster"):
            if name in data:
                # Rosters may be packaged names; folders may not exist yet (cache).
                data[name] = _relative(data[name], file.parent, name in ("roster", "judge_roster"))
        data["decontaminate_against"] = tuple(
            _relative(p, file.parent) for p in _as_list(data.get("decontaminate_against", ()))
        )
        # Overrides come from the command line or the main job: their paths are the caller's.
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        for name in ("opponents", "phases"):
            if name in data:
                data[name] = tuple(str(v) for v in _as_list(data[name]))
        if "phases" in data:  # they run in the method's order, whatever the file's
            data["phases"] = tuple(
                [p for p in PHASES if p in data["phases"]]
                + [p for p in data["phases"] if p not in PHASES]
            )
        for name in ("sft_gap", "dpo_gap", "reward_gap"):
            if name in data:
                try:
                    data[name] = tuple(float(v) for v in _as_list(data[name]))
                except (TypeError, ValueError):
                    raise UserError(
                        f"{file}: {name} must be a number or a list of numbers"
                    ) from None
        for name in ("train", "train_by_kind"):
            if not isinstance(data.get(name, {}), dict):
                raise UserError(f"{file}: {name} must be a mapping")
        return cls(**data, source=str(file))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _relative(value, folder: Path, may_be_name: bool = False):
    """A path relative to the config file's folder; with `may_be_name`, a value that is
    no file there stays as given (a packaged roster name)."""
    if value is None or Path(str(value)).is_absolute():
        return None if value is None else str(value)
    candidate = folder / str(value)
    if may_be_name and not candidate.exists():
        return str(value)
    return str(candidate)
