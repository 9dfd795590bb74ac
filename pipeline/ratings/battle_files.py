"""Battle files of any origin -> outcome counts per model pair, aggregated with Dask.

Accepted tables (Parquet, CSV, JSONL):
- ours or FastChat's: `model_a`, `model_b`, `winner` in model_a | model_b | tie |
  tie (bothbad); a null winner is a judge error;
- left/right votes (e.g. LLMFAO crowd comparisons): `left`, `right`, `winner` in
  left | right | tie.
Each partition is reduced on a worker to a few rows of (model_a, model_b,
outcome, n); rows that cannot count are kept as outcome "dropped: <reason>" so
they are reported, never lost silently. Raw battles never meet in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import UserError
from core.submit import compute_tasks

OUTCOMES = ("model_a", "model_b", "tie", "tie (bothbad)")
LEFT_RIGHT = {"left": "model_a", "right": "model_b", "tie": "tie"}
STYLE_COLUMNS = ("answer_a", "answer_b", "len_a", "len_b")


@dataclass(frozen=True)
class BattleFilter:
    judges: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # keep battles where both models are listed
    since: str | None = None  # ISO date, on a `tstamp` (unix seconds) or `date` column
    until: str | None = None


@dataclass
class Aggregate:
    counts: pd.DataFrame  # model_a, model_b, outcome, n
    dropped: dict[str, int] = field(default_factory=dict)
    filtered: int = 0

    @property
    def battles(self) -> int:
        return int(self.counts.n.sum())


def _reader(path: Path, blocksize: str):
    import dask.dataframe as dd

    suffix = path.suffix.lower()
    if suffix == ".parquet" or path.is_dir():
        return dd.read_parquet(str(path))
    if suffix == ".csv":
        return dd.read_csv(
            str(path), blocksize=blocksize, dtype=str, keep_default_na=False, na_values=[""]
        )
    if suffix in (".jsonl", ".ndjson", ".json"):
        return dd.read_json(str(path), lines=True, blocksize=blocksize, dtype=False)
    raise UserError(f"{path}: unknown battle file format {suffix!r}; use .parquet, .csv or .jsonl")


def open_battle_file(path: Path, blocksize: str = "64MiB"):
    """A lazy Dask frame of one battle file, or a one-line UserError."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: empty file")
    try:
        frame = _reader(path, blocksize)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader error means the file is unreadable
        raise UserError(f"{path}: cannot read battles ({type(exc).__name__}: {exc})") from None
    columns = set(frame.columns)
    if not ({"model_a", "model_b", "winner"} <= columns or {"left", "right", "winner"} <= columns):
        raise UserError(
            f"{path}: no battle columns; need model_a, model_b, winner (or left, right, winner); "
            f"found {', '.join(sorted(map(str, columns))) or 'none'}"
        )
    return frame


def _date_mask(part: pd.DataFrame, filt: BattleFilter) -> pd.Series | None:
    if filt.since is None and filt.until is None:
        return None
    if "tstamp" in part:
        when = pd.to_datetime(pd.to_numeric(part["tstamp"], errors="coerce"), unit="s", utc=True)
    elif "date" in part:
        when = pd.to_datetime(part["date"], errors="coerce", utc=True)
    else:
        raise UserError("--since/--until need a `tstamp` (unix seconds) or `date` column")
    mask = pd.Series(True, index=part.index)
    if filt.since:
        mask &= when >= pd.Timestamp(filt.since, tz="UTC")
    if filt.until:
        mask &= when < pd.Timestamp(filt.until, tz="UTC")
    return mask


def normalize_partition(part: pd.DataFrame, filt: BattleFilter) -> tuple[pd.DataFrame, dict, int]:
    """(battles with model_a, model_b, outcome [+ style columns], dropped reasons, filtered count)."""
    if "model_a" in part:
        battles = pd.DataFrame({"model_a": part["model_a"], "model_b": part["model_b"]})
        winner = part["winner"]
    else:
        battles = pd.DataFrame({"model_a": part["left"], "model_b": part["right"]})
        winner = part["winner"].map(lambda w: LEFT_RIGHT.get(w, w) if isinstance(w, str) else w)
    battles["outcome"] = winner
    for column in STYLE_COLUMNS:
        if column in part:
            battles[column] = part[column]

    keep = pd.Series(True, index=part.index)
    for mask in (
        part["judge"].isin(filt.judges) if filt.judges else None,
        (battles.model_a.isin(filt.models) & battles.model_b.isin(filt.models))
        if filt.models
        else None,
        _date_mask(part, filt),
    ):
        if mask is not None:
            keep &= mask.fillna(False).astype(bool)
    filtered = int((~keep).sum())
    battles = battles[keep]

    reason = pd.Series(pd.NA, index=battles.index, dtype="object")
    missing_model = battles.model_a.isna() | battles.model_b.isna()
    reason[missing_model] = "missing model name"
    reason[reason.isna() & battles.outcome.isna()] = "judge error (no winner)"
    unknown = reason.isna() & ~battles.outcome.isin(OUTCOMES)
    reason[unknown] = "unknown winner value " + battles.outcome[unknown].astype(str).map(repr)
    reason[reason.isna() & (battles.model_a == battles.model_b)] = "model battles itself"
    dropped = reason.dropna().value_counts().to_dict()
    return battles[reason.isna()], {str(k): int(v) for k, v in dropped.items()}, filtered


def count_partition(part: pd.DataFrame, filt: BattleFilter) -> pd.DataFrame:
    """A partition reduced to outcome counts; drops and filters ride along as pseudo-outcomes."""
    battles, dropped, filtered = normalize_partition(part, filt)
    counts = battles.groupby(["model_a", "model_b", "outcome"], observed=True).size()
    counts = counts.rename("n").reset_index()
    extra = [
        {"model_a": "", "model_b": "", "outcome": f"dropped: {r}", "n": n}
        for r, n in dropped.items()
    ]
    if filtered:
        extra.append({"model_a": "", "model_b": "", "outcome": "filtered", "n": filtered})
    return pd.concat([counts, pd.DataFrame(extra, columns=counts.columns)], ignore_index=True)


def aggregate_battles(
    paths: list[Path], filt: BattleFilter, client, progress: bool = True
) -> Aggregate:
    """Sum the outcome counts of every partition of every file on the cluster."""
    from dask import delayed

    frames = [open_battle_file(Path(p)) for p in paths]
    if filt.judges and any("judge" not in f.columns for f in frames):
        raise UserError("--judge needs a `judge` column in every battle file")
    tasks = [delayed(count_partition)(part, filt) for f in frames for part in f.to_delayed()]
    parts = compute_tasks(client, tasks, desc="count battles", progress=progress)
    every = pd.concat(parts, ignore_index=True).groupby(["model_a", "model_b", "outcome"]).n.sum()
    every = every.reset_index()
    is_count = every.outcome.isin(OUTCOMES)
    dropped = {
        o.removeprefix("dropped: "): int(n)
        for o, n in zip(every.outcome[~is_count], every.n[~is_count])
        if o.startswith("dropped: ")
    }
    filtered = int(every.n[every.outcome == "filtered"].sum())
    return Aggregate(every[is_count].reset_index(drop=True), dropped, filtered)


def _kept_battles(part: pd.DataFrame, filt: BattleFilter) -> pd.DataFrame:
    return normalize_partition(part, filt)[0]


def collect_battles(
    paths: list[Path], filt: BattleFilter, client, progress: bool = True
) -> pd.DataFrame:
    """Every counted battle, in file order, in one frame: for online Elo and style control only,
    which need battles rather than counts."""
    from dask import delayed

    frames = [open_battle_file(Path(p)) for p in paths]
    tasks = [delayed(_kept_battles)(part, filt) for f in frames for part in f.to_delayed()]
    parts = compute_tasks(client, tasks, desc="collect battles", progress=progress)
    return pd.concat(parts, ignore_index=True)
