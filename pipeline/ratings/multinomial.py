"""Many draws from one multinomial, exactly, at about half numpy's cost.

numpy's multinomial draws one conditional binomial per cell; a Poisson variate
costs about half as much. Independent Poisson(total * p) counts, given their
sum S, are Multinomial(S, p) draws: S battles with independent labels. The
row is then brought to `total` battles without changing that law:
- S < total: add total - S more battles with independent labels
  (a Multinomial(total - S, p) draw, made by categorical draws);
- S > total: drop S - total battles chosen uniformly at random, which leaves
  `total` battles whose labels are still independent draws from p.
|S - total| is about sqrt(total), so the fix-up is a small part of the cost.
"""

from __future__ import annotations

import numpy as np


def multinomial_draws(
    total: int, weights: np.ndarray, rounds: int, rng: np.random.Generator
) -> np.ndarray:
    """`rounds` x len(weights) counts, each row from Multinomial(total, weights / weights.sum())."""
    p = weights / weights.sum()
    cells = len(p)
    draws = rng.poisson(total * p, size=(rounds, cells))
    surplus = draws.sum(axis=1) - total
    # Too few: categorical draws for the missing battles, counted with one bincount.
    missing = np.maximum(-surplus, 0)
    cumulative = np.cumsum(p)
    labels = np.searchsorted(cumulative, rng.random(missing.sum()) * cumulative[-1], side="right")
    rows = np.repeat(np.arange(rounds), missing)
    added = np.bincount(rows * cells + np.minimum(labels, cells - 1), minlength=rounds * cells)
    draws += added.reshape(rounds, cells)
    # Too many: drop a uniformly random subset of the row's battles.
    for r in np.flatnonzero(surplus > 0):
        battles = np.cumsum(draws[r])
        dropped = rng.choice(battles[-1], surplus[r], replace=False)
        draws[r] -= np.bincount(np.searchsorted(battles, dropped, side="right"), minlength=cells)
    return draws
