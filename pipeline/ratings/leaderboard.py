"""From pair counts to a leaderboard table and its files (CSV, Markdown, Parquet, PNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.parquet_io import atomic_path, write_text_atomic
from pipeline.ratings.bootstrap import bootstrap_ratings, ci_ranks
from pipeline.ratings.bradley_terry import Anchor, data_warnings
from pipeline.ratings.pair_counts import PairCounts
from pipeline.ratings.plots import plot_ratings, plot_win_rates

COLUMNS = ["rank", "model", "rating", "lower", "upper", "battles", "win_rate"]


@dataclass(frozen=True)
class RatingOptions:
    tie_mode: str = "half"
    bothbad_as_tie: bool = True
    anchor: Anchor = Anchor()
    bootstrap_rounds: int = 100
    alpha: float = 1e-4
    seed: int = 0


@dataclass
class Leaderboard:
    """The table as ordered numpy columns, best first; `table` is the same as pandas (imported
    only when asked for: `arena elo` writes its files without it)."""

    columns: dict[str, np.ndarray]
    counts: PairCounts
    warnings: list[str] = field(default_factory=list)

    @property
    def table(self):
        import pandas as pd

        return pd.DataFrame(self.columns)

    def add_column(self, name: str, by_model: dict[str, float]) -> None:
        self.columns[name] = np.array([by_model[m] for m in self.columns["model"]], dtype=float)


# What `write_leaderboard` writes in its folder (jobs/outputs.py: nothing else may be there).
OUTPUTS = (
    "leaderboard.csv",
    "leaderboard.md",
    "leaderboard.parquet",
    "ratings.png",
    "win_rates.png",
    "summary.json",
    "by",  # --by: a leaderboard per value of a column (pipeline/ratings/groups.py)
)


def build_leaderboard(counts: PairCounts, options: RatingOptions, progress=None) -> Leaderboard:
    if options.anchor.model is not None and options.anchor.model not in counts.models:
        raise UserError(f"anchor model {options.anchor.model!r} has no battles")
    warnings = data_warnings(counts.comparison_matrix(options.tie_mode), counts.models)
    if options.alpha == 0 and warnings:
        # Without the regulariser these ratings do not exist (they run off to infinity).
        raise UserError(f"--alpha 0: {warnings[0]}; ratings need --alpha > 0 (default 1e-4)")
    dist = bootstrap_ratings(
        counts,
        rounds=options.bootstrap_rounds,
        tie_mode=options.tie_mode,
        anchor=options.anchor,
        alpha=options.alpha,
        seed=options.seed,
        progress=progress,
    )
    stats = dist.summary()
    columns = {
        "rank": ci_ranks(stats["lower"], stats["upper"]),
        "model": np.array(counts.models, dtype=object),
        "rating": stats["rating"],
        "lower": stats["lower"],
        "upper": stats["upper"],
        "battles": counts.battles_per_model.astype(np.int64),
        "win_rate": counts.win_rate(),
    }
    order = np.argsort(-stats["rating"], kind="stable")
    columns = {name: values[order] for name, values in columns.items()}
    return Leaderboard(columns, counts, warnings)


def markdown_table(table) -> str:
    """The leaderboard (a Leaderboard's columns or its pandas table) as a Markdown table."""
    lines = [
        "| rank | model | rating | 95% CI | battles | win rate |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    rows = zip(*(list(table[c]) for c in COLUMNS))
    for rank, model, rating, lower, upper, battles, win_rate in rows:
        ci = f"{lower - rating:+.1f} / {upper - rating:+.1f}"
        lines.append(f"| {rank} | {model} | {rating:.1f} | {ci} | {battles} | {win_rate:.3f} |")
    return "\n".join(lines) + "\n"


def _arrow_table(columns: dict[str, np.ndarray]):
    """numpy columns (numbers, or objects holding text) as an Arrow table, built from buffers:
    `pa.array` imports pandas (half a second) to check for pandas types first."""
    import pyarrow as pa

    arrays = []
    for values in columns.values():
        if values.dtype.kind == "O":
            text = [str(v).encode() for v in values]
            offsets = np.cumsum([0] + [len(t) for t in text], dtype=np.int32)
            buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(text))]
            arrays.append(pa.Array.from_buffers(pa.string(), len(text), buffers))
        else:
            floats = values.dtype.kind == "f"
            kind = pa.float64() if floats else pa.int64()
            values = np.ascontiguousarray(values, dtype=np.float64 if floats else np.int64)
            nulls = None
            if floats and np.isnan(values).any():  # NaN win rate: never played
                nulls = pa.py_buffer(np.packbits(~np.isnan(values), bitorder="little"))
            arrays.append(pa.Array.from_buffers(kind, len(values), [nulls, pa.py_buffer(values)]))
    return pa.Table.from_arrays(arrays, names=list(columns))


def write_leaderboard(board: Leaderboard, out: Path, extra: dict) -> list[Path]:
    """leaderboard.csv / .md / .parquet, ratings.png, win_rates.png, summary.json."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    columns = board.columns
    with atomic_path(out / "leaderboard.parquet") as tmp:
        pq.write_table(_arrow_table(columns), tmp)
    # Two decimals in the CSV, as a person reads it; the Parquet keeps full precision.
    rounded = {
        name: np.round(values, 2) if values.dtype.kind == "f" else values
        for name, values in columns.items()
    }
    with atomic_path(out / "leaderboard.csv") as tmp:
        pv.write_csv(_arrow_table(rounded), tmp)
    write_text_atomic(markdown_table(columns), out / "leaderboard.md")
    plot_ratings(columns, out / "ratings.png")
    order = list(columns["model"])
    index = [board.counts.models.index(m) for m in order]
    rates = board.counts.pairwise_win_rate()[np.ix_(index, index)]
    plot_win_rates(order, rates, out / "win_rates.png")
    summary = {"warnings": board.warnings, **extra}
    write_text_atomic(json.dumps(summary, indent=2, default=str) + "\n", out / "summary.json")
    return [out / n for n in OUTPUTS if n != "by"]
