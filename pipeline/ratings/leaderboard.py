"""From pair counts to a leaderboard table and its files (CSV, Markdown, Parquet, PNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ratings.bootstrap import bootstrap_ratings, ci_ranks
from pipeline.ratings.bradley_terry import Anchor, data_warnings
from pipeline.ratings.pair_counts import PairCounts

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
    table: pd.DataFrame
    counts: PairCounts
    warnings: list[str] = field(default_factory=list)


def build_leaderboard(counts: PairCounts, options: RatingOptions, progress=None) -> Leaderboard:
    if options.anchor.model is not None and options.anchor.model not in counts.models:
        from core.errors import UserError

        raise UserError(f"anchor model {options.anchor.model!r} has no battles")
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
    table = pd.DataFrame(
        {
            "model": counts.models,
            "rating": stats["rating"],
            "lower": stats["lower"],
            "upper": stats["upper"],
            "battles": counts.battles_per_model.astype(int),
            "win_rate": counts.win_rate(),
        }
    )
    table["rank"] = ci_ranks(table.lower.to_numpy(), table.upper.to_numpy())
    table = table.sort_values(["rating"], ascending=False)[COLUMNS].reset_index(drop=True)
    warnings = data_warnings(counts.comparison_matrix(options.tie_mode), counts.models)
    return Leaderboard(table, counts, warnings)


def markdown_table(table: pd.DataFrame) -> str:
    lines = [
        "| rank | model | rating | 95% CI | battles | win rate |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in table.itertuples():
        ci = f"{r.lower - r.rating:+.1f} / {r.upper - r.rating:+.1f}"
        lines.append(
            f"| {r.rank} | {r.model} | {r.rating:.1f} | {ci} | {r.battles} | {r.win_rate:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_leaderboard(board: Leaderboard, out: Path, extra: dict) -> list[Path]:
    """leaderboard.csv / .md / .parquet, ratings.png, win_rates.png, summary.json."""
    from pipeline.ratings.plots import plot_ratings, plot_win_rates

    out.mkdir(parents=True, exist_ok=True)
    table = board.table
    table.to_csv(out / "leaderboard.csv", index=False, float_format="%.2f")
    table.to_parquet(out / "leaderboard.parquet", index=False)
    (out / "leaderboard.md").write_text(markdown_table(table))
    plot_ratings(table, out / "ratings.png")
    order = list(table.model)
    index = [board.counts.models.index(m) for m in order]
    rates = board.counts.pairwise_win_rate()[np.ix_(index, index)]
    plot_win_rates(order, rates, out / "win_rates.png")
    summary = {"warnings": board.warnings, **extra}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return [
        out / n
        for n in (
            "leaderboard.csv",
            "leaderboard.md",
            "leaderboard.parquet",
            "ratings.png",
            "win_rates.png",
            "summary.json",
        )
    ]
