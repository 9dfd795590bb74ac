"""Many draws from one multinomial, exactly, at under half numpy's cost.

numpy's multinomial draws one conditional binomial per cell; a Poisson variate
costs about half as much. Independent Poisson(rate * p) counts, given their sum
S, are Multinomial(S, p) draws: S battles with independent labels, whatever the
rate. The rate is set a few standard deviations below `total`, so S < total
almost always, and the row is completed with total - S more battles with
independent labels (categorical draws), which gives Multinomial(total, p)
exactly. A row that overshoots (S > total, about 1 in 700) is drawn again:
rejecting on S alone leaves the law given S unchanged.
"""

from __future__ import annotations

import numpy as np

SHORTFALL_SIGMAS = 3.0  # rate = total - 3 sqrt(total): P(S > total) ~ 0.13%


def multinomial_draws(
    total: int, weights: np.ndarray, rounds: int, rng: np.random.Generator
) -> np.ndarray:
    """`rounds` x len(weights) counts, each row from Multinomial(total, weights / weights.sum())."""
    p = weights / weights.sum()
    cells = len(p)
    rate = max(total - SHORTFALL_SIGMAS * np.sqrt(total), 0.0)
    draws = rng.poisson(rate * p, size=(rounds, cells))
    while (over := np.flatnonzero(draws.sum(axis=1) > total)).size:
        draws[over] = rng.poisson(rate * p, size=(len(over), cells))
    missing = total - draws.sum(axis=1)
    labels = categorical_draws(p, rng.random(missing.sum()))
    rows = np.repeat(np.arange(rounds), missing)
    added = np.bincount(rows * cells + labels, minlength=rounds * cells)
    return draws + added.reshape(rounds, cells)


def categorical_draws(p: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The cell of each uniform under the cumulative of `p`, by inversion with a guide
    table (one bucket per cell gives each search a start a step or two short of its
    cell): several times faster than a binary search over all cells."""
    cells = len(p)
    cumulative = np.cumsum(p)
    u = uniforms * cumulative[-1]
    guide = np.searchsorted(cumulative, np.arange(cells) / cells * cumulative[-1], side="right")
    labels = guide[np.minimum((uniforms * cells).astype(np.int64), cells - 1)]
    labels = np.minimum(labels, cells - 1)
    todo = np.flatnonzero((cumulative[labels] <= u) & (labels < cells - 1))
    while todo.size:
        labels[todo] += 1
        todo = todo[(cumulative[labels[todo]] <= u[todo]) & (labels[todo] < cells - 1)]
    return labels
