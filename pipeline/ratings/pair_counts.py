"""Outcome counts per ordered model pair, as dense matrices indexed by model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIE_MODES = ("half", "ignore")


@dataclass
class PairCounts:
    """wins[i, j]: battles i won against j; ties[i, j] = ties[j, i]: ties between them."""

    models: list[str]
    wins: np.ndarray
    ties: np.ndarray

    @classmethod
    def from_cells(
        cls, models: list[str], cells: np.ndarray, bothbad_as_tie: bool = True
    ) -> PairCounts:
        """From cells[a, b, k], battles of a (first) against b with outcome k: model_a won,
        model_b won, tie, tie (bothbad) (battle_rules.BattleCounts)."""
        cells = cells.astype(float)
        ties = cells[:, :, 2] + (cells[:, :, 3] if bothbad_as_tie else 0.0)
        return cls(list(models), cells[:, :, 0] + cells[:, :, 1].T, ties + ties.T)

    @classmethod
    def from_codes(
        cls, models: list[str], a: np.ndarray, b: np.ndarray, outcome: np.ndarray
    ) -> PairCounts:
        """Battles as integer arrays (model indices; outcome 0 a wins, 1 b wins, 2 tie), counted
        with one bincount: O(battles) with no sort or hash, the fast path for millions."""
        n = len(models)
        cells = np.bincount((a.astype(np.int64) * n + b) * 3 + outcome, minlength=n * n * 3)
        cells = cells.reshape(n, n, 3).astype(float)
        ties = cells[:, :, 2]
        return cls(list(models), cells[:, :, 0] + cells[:, :, 1].T, ties + ties.T)

    def comparison_matrix(self, tie_mode: str = "half") -> np.ndarray:
        """comp[i, j]: (fractional) wins of i over j, the input of a Bradley-Terry fit."""
        if tie_mode == "half":
            return self.wins + 0.5 * self.ties
        if tie_mode == "ignore":
            return self.wins.copy()
        raise ValueError(f"tie mode {tie_mode!r}: expected one of {', '.join(TIE_MODES)}")

    @property
    def battles_per_model(self) -> np.ndarray:
        return self.wins.sum(1) + self.wins.sum(0) + self.ties.sum(1)

    def win_rate(self) -> np.ndarray:
        """(wins + ties / 2) / battles, per model."""
        played = self.battles_per_model
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                played > 0, (self.wins.sum(1) + 0.5 * self.ties.sum(1)) / played, np.nan
            )

    def pairwise_win_rate(self) -> np.ndarray:
        """rate[i, j]: share of i's battles against j that i won (ties half)."""
        total = self.wins + self.wins.T + self.ties
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (self.wins + 0.5 * self.ties) / total, np.nan)
