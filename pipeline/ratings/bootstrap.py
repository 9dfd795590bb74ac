"""Bootstrap confidence intervals by multinomial resampling of the pair counts.

Resampling N battles with replacement is the same as drawing the count of
every (winner, loser) and tie cell from a multinomial with the observed
shares, so a round costs O(models^2), not O(battles). All rounds are drawn at
in chunks (an exact multinomial sampler, see multinomial.py), each chunk fitted
together by batched Newton steps from the point fit, which stays a choix fit,
on a thread per core; a round where Newton does not converge is refitted with
choix.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pipeline.ratings.batched_newton import fit_bradley_terry_batch
from pipeline.ratings.bradley_terry import Anchor, fit_bradley_terry, to_elo
from pipeline.ratings.multinomial import multinomial_draws
from pipeline.ratings.pair_counts import PairCounts

ROUNDS_CELLS_PER_CHUNK = 4_000_000  # rounds x models^2 fitted at once: ~32 MB per array
ROUNDS_PER_CHUNK = 10  # small chunks stay in cache: fastest measured at 100 and 200 models


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
    threads: int | None = None,
) -> RatingDistribution:
    """Point ratings and `rounds` bootstrap replicates, all on the Elo scale."""
    n = len(counts.models)
    theta = fit_bradley_terry(counts.comparison_matrix(tie_mode), alpha)
    point = anchor.apply(to_elo(theta), counts.models)

    # Cells: every ordered win cell, and every unordered tie cell once. Rounds are drawn
    # over the non-zero cells only (the others never get a battle), in chunks that each
    # have their own random stream, so the result does not depend on the thread count.
    iu = np.triu_indices(n, k=1)
    cells = np.concatenate([counts.wins.ravel(), counts.ties[iu]])
    observed = np.flatnonzero(cells)
    total = int(round(cells.sum()))
    chunk = max(1, min(ROUNDS_PER_CHUNK, ROUNDS_CELLS_PER_CHUNK // (n * n)))
    firsts = range(0, rounds, chunk)

    def fit_chunk(first: int, stream: np.random.SeedSequence) -> np.ndarray:
        draws = np.zeros((min(chunk, rounds - first), len(cells)))
        if total:
            rng = np.random.default_rng(stream)
            draws[:, observed] = multinomial_draws(total, cells[observed], len(draws), rng)
        wins = draws[:, : n * n].reshape(-1, n, n)
        ties = np.zeros_like(wins)
        ties[:, iu[0], iu[1]] = draws[:, n * n :]
        sample = PairCounts(counts.models, wins, ties + ties.transpose(0, 2, 1))
        comps = sample.comparison_matrix(tie_mode)
        fitted, converged = fit_bradley_terry_batch(comps, alpha, theta)
        for r in np.flatnonzero(~converged):
            fitted[r] = fit_bradley_terry(comps[r], alpha, theta)
        return to_elo(fitted)

    replicates = np.empty((rounds, n))
    streams = np.random.SeedSequence(seed).spawn(len(firsts))
    # numpy's random draws and array kernels release the GIL: threads use every core.
    with ThreadPoolExecutor(threads or len(os.sched_getaffinity(0))) as pool:
        for first, elo in zip(firsts, pool.map(fit_chunk, firsts, streams)):
            replicates[first : first + len(elo)] = elo
            if progress is not None:
                progress.update(len(elo))
    return RatingDistribution(counts.models, point, anchor.apply(replicates, counts.models))


def ci_ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank 1 + the number of models whose lower bound is above this model's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
