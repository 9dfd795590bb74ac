"""Bootstrap confidence intervals by multinomial resampling of the pair counts.

Resampling N battles with replacement is the same as drawing the count of
every (winner, loser) and tie cell from a multinomial with the observed
shares, so a round costs O(models^2), not O(battles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.ratings.bradley_terry import Anchor, fit_bradley_terry, to_elo
from pipeline.ratings.pair_counts import PairCounts


@dataclass
class RatingDistribution:
    models: list[str]
    point: np.ndarray  # the fit on all data
    rounds: np.ndarray  # rounds x models, anchored

    def summary(self) -> dict[str, np.ndarray]:
        if len(self.rounds) == 0:
            return {"rating": self.point, "lower": self.point, "upper": self.point}
        return {
            "rating": np.median(self.rounds, axis=0),  # the paper reports the median
            "lower": np.percentile(self.rounds, 2.5, axis=0),
            "upper": np.percentile(self.rounds, 97.5, axis=0),
        }


def bootstrap_ratings(
    counts: PairCounts,
    *,
    rounds: int = 100,
    tie_mode: str = "half",
    anchor: Anchor = Anchor(),
    alpha: float = 1e-4,
    seed: int = 0,
    progress=None,
) -> RatingDistribution:
    """Point ratings and `rounds` bootstrap replicates, all on the Elo scale."""
    n = len(counts.models)
    theta = fit_bradley_terry(counts.comparison_matrix(tie_mode), alpha)
    point = anchor.apply(to_elo(theta), counts.models)

    # Cells: every ordered win cell, and every unordered tie cell once.
    iu = np.triu_indices(n, k=1)
    cells = np.concatenate([counts.wins.ravel(), counts.ties[iu]])
    total = int(round(cells.sum()))
    rng = np.random.default_rng(seed)
    replicates = np.empty((rounds, n))
    for r in range(rounds):
        draw = rng.multinomial(total, cells / cells.sum()).astype(float)
        wins = draw[: n * n].reshape(n, n)
        ties = np.zeros((n, n))
        ties[iu] = draw[n * n :]
        sample = PairCounts(counts.models, wins, ties + ties.T)
        replicates[r] = to_elo(fit_bradley_terry(sample.comparison_matrix(tie_mode), alpha, theta))
        if progress is not None:
            progress.update(1)
    return RatingDistribution(counts.models, point, anchor.apply(replicates, counts.models))


def ci_ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank 1 + the number of models whose lower bound is above this model's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
