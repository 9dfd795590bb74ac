"""The bootstrap's batched Newton fits against choix, round by round, on the same resampled counts."""

import numpy as np
import pandas as pd
import pytest

from pipeline.ratings.batched_newton import fit_bradley_terry_batch
from pipeline.ratings.bootstrap import bootstrap_ratings
from pipeline.ratings.bradley_terry import fit_bradley_terry, fit_with_choix, to_elo
from pipeline.ratings.pair_counts import PairCounts
from tests.pipeline.ratings.conftest import simulate


def llmfao_counts(path) -> PairCounts:
    votes = pd.read_csv(path)
    models = sorted(set(votes.left) | set(votes.right))
    index = {m: i for i, m in enumerate(models)}
    outcome = votes.winner.map({"left": 0, "right": 1, "tie": 2}).to_numpy()
    return PairCounts.from_codes(
        models, votes.left.map(index).to_numpy(), votes.right.map(index).to_numpy(), outcome
    )


def simulated_counts(models: int, battles: int, seed: int) -> PairCounts:
    rng = np.random.default_rng(seed)
    strengths = {f"m{i:03d}": float(s) for i, s in enumerate(rng.normal(1000, 200, models))}
    frame = simulate(strengths, battles, seed=seed, tie_share=0.1)
    names = list(strengths)
    index = {m: i for i, m in enumerate(names)}
    outcome = frame.winner.map({"model_a": 0, "model_b": 1, "tie": 2}).to_numpy()
    return PairCounts.from_codes(
        names, frame.model_a.map(index).to_numpy(), frame.model_b.map(index).to_numpy(), outcome
    )


def resampled_comps(counts: PairCounts, tie_mode: str, rounds: int, seed: int) -> np.ndarray:
    """Comparison matrices of multinomially resampled battles (wins and ties cells)."""
    n = len(counts.models)
    rng = np.random.default_rng(seed)
    cells = np.concatenate([counts.wins.ravel(), counts.ties.ravel() / 2])
    draws = rng.multinomial(int(round(cells.sum())), cells / cells.sum(), size=rounds)
    wins = draws[:, : n * n].reshape(rounds, n, n).astype(float)
    ties = draws[:, n * n :].reshape(rounds, n, n).astype(float)
    return PairCounts(counts.models, wins, ties + ties.transpose(0, 2, 1)).comparison_matrix(
        tie_mode
    )


def assert_matches_choix(comps: np.ndarray, alpha: float, initial: np.ndarray) -> None:
    batch, converged = fit_bradley_terry_batch(comps, alpha, initial)
    assert converged.all()
    choix_fits = np.array([fit_with_choix(c, alpha, initial) for c in comps])
    assert np.abs(to_elo(batch - choix_fits)).max() <= 0.01


@pytest.mark.parametrize("tie_mode", ["half", "ignore"])
def test_batched_newton_equals_choix_on_real_votes(llmfao_votes, tie_mode):
    counts = llmfao_counts(llmfao_votes)
    point = fit_bradley_terry(counts.comparison_matrix(tie_mode), 1e-4)
    assert_matches_choix(resampled_comps(counts, tie_mode, 20, seed=1), 1e-4, point)


@pytest.mark.parametrize("alpha", [1e-4, 1e-2])
def test_batched_newton_equals_choix_on_simulated_counts(alpha):
    counts = simulated_counts(40, 50_000, seed=3)
    point = fit_bradley_terry(counts.comparison_matrix(), alpha)
    assert_matches_choix(resampled_comps(counts, "half", 20, seed=4), alpha, point)


def test_bootstrap_with_an_unbeaten_model_stays_finite_and_centred():
    # "a" never loses: its rating rests on the regulariser; the bootstrap still lands.
    wins = np.array([[0, 5, 4, 3], [0, 0, 6, 2], [0, 3, 0, 5], [0, 4, 2, 0.0]])
    counts = PairCounts(["a", "b", "c", "d"], wins, np.zeros((4, 4)))
    dist = bootstrap_ratings(counts, rounds=30, seed=2)
    assert np.isfinite(dist.rounds).all()
    assert np.allclose(dist.rounds.mean(axis=1), 1000)
    assert (dist.rounds[:, 0] > dist.rounds[:, 1:].max(axis=1)).all()


def test_bootstrap_draws_keep_the_battle_count_and_skip_empty_cells():
    counts = simulated_counts(12, 5_000, seed=5)
    counts.wins[0, 1] = counts.wins[1, 0] = 0.0  # a pair that never met
    counts.ties[0, 1] = counts.ties[1, 0] = 0.0
    dist = bootstrap_ratings(counts, rounds=25, seed=6)
    assert dist.rounds.shape == (25, 12) and np.isfinite(dist.rounds).all()
    summary = dist.summary()
    assert ((summary["lower"] <= summary["rating"]) & (summary["rating"] <= summary["upper"])).all()


def test_multinomial_draws_follow_the_multinomial_law():
    from scipy.stats import binom

    from pipeline.ratings.multinomial import multinomial_draws

    p = np.array([0.2, 0.3, 0.5])
    draws = multinomial_draws(50, p * 7, 100_000, np.random.default_rng(7))
    assert (draws.sum(axis=1) == 50).all() and draws.min() >= 0
    expected_cov = 50 * (np.diag(p) - np.outer(p, p))
    assert np.abs(draws.mean(axis=0) - 50 * p).max() < 0.05
    assert np.abs(np.cov(draws.T) - expected_cov).max() < 0.15
    # Each cell's marginal is Binomial(50, p): compare the frequencies to its pmf.
    freq = np.bincount(draws[:, 0], minlength=51) / len(draws)
    assert np.abs(freq - binom.pmf(np.arange(51), 50, 0.2)).max() < 0.005


def test_bootstrap_does_not_depend_on_the_thread_count():
    counts = simulated_counts(30, 20_000, seed=8)
    one = bootstrap_ratings(counts, rounds=60, seed=3, threads=1)
    two = bootstrap_ratings(counts, rounds=60, seed=3, threads=2)
    assert np.array_equal(one.rounds, two.rounds)
    other_seed = bootstrap_ratings(counts, rounds=60, seed=4, threads=2)
    assert not np.array_equal(one.rounds, other_seed.rounds)


def test_categorical_draws_invert_the_cumulative_exactly():
    from pipeline.ratings.multinomial import categorical_draws

    rng = np.random.default_rng(9)
    p = rng.random(500) ** 6  # skewed: guide buckets spanning many small cells
    p[[0, 7, 499]] = 0.0  # empty cells, first and last included, are never drawn
    u = rng.random(200_000)
    labels = categorical_draws(p, u)
    cumulative = np.cumsum(p)
    assert np.array_equal(labels, np.searchsorted(cumulative, u * cumulative[-1], side="right"))
    assert not np.isin(labels, [0, 7, 499]).any()
