"""Leaderboard pictures: ratings with 95% CIs, and the pairwise win-rate heatmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_ratings(table: pd.DataFrame, path: Path, top: int = 40) -> None:
    plt = _pyplot()
    shown = table.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(shown) + 1.2))
    errors = np.vstack([shown.rating - shown.lower, shown.upper - shown.rating])
    ax.errorbar(shown.rating, range(len(shown)), xerr=errors, fmt="o", color="tab:blue", capsize=3)
    ax.set_yticks(range(len(shown)), shown.model, fontsize=8)
    ax.set_xlabel("rating (Elo scale, median of bootstrap, 95% CI)")
    ax.grid(axis="x", alpha=0.3)
    shown_of = f"top {top} of " if len(table) > top else ""
    ax.set_title(f"Bradley-Terry ratings ({shown_of}{len(table)} models)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_win_rates(models: list[str], rates: np.ndarray, path: Path, top: int = 30) -> None:
    plt = _pyplot()
    k = min(top, len(models))
    fig, ax = plt.subplots(figsize=(0.32 * k + 3, 0.32 * k + 2))
    image = ax.imshow(rates[:k, :k], cmap="RdBu", vmin=0, vmax=1)
    ax.set_xticks(range(k), models[:k], rotation=90, fontsize=7)
    ax.set_yticks(range(k), models[:k], fontsize=7)
    ax.set_xlabel("model B")
    ax.set_ylabel("model A")
    ax.set_title("share of battles A won against B (ties half; blank: never met)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
