"""Bradley-Terry ratings: real votes against an independent fit, simulated recovery, edge cases."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr

from pipeline.flows.ratings import RatingsConfig, rate_battles
from pipeline.ratings.bootstrap import bootstrap_ratings, ci_ranks
from pipeline.ratings.bradley_terry import (
    Anchor,
    data_warnings,
    fit_bradley_terry,
    fit_with_choix,
    strong_components,
)
from pipeline.ratings.online_elo import online_elo
from pipeline.ratings.pair_counts import PairCounts
from tests.pipeline.ratings.conftest import simulate


def recompute(client, paths, out, progress=False, **options):
    """The ratings flow with RatingsConfig fields as keywords."""
    return rate_battles(client, paths, out, RatingsConfig(**options), progress=progress)


def independent_mle(a: np.ndarray, b: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Maximum likelihood over individual battles (y = 1, 0 or 0.5 for a tie), Elo scale, mean 0."""

    def nll(theta):
        z = theta[a] - theta[b]
        loss = (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).sum()
        g = 1 / (1 + np.exp(-z)) - y
        return loss, np.bincount(a, g, n) - np.bincount(b, g, n)

    fit = minimize(
        nll, np.zeros(n), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 10000}
    )
    theta = fit.x - fit.x.mean()
    return theta * 400 / np.log(10)


def test_real_votes_match_an_independent_fit(client, llmfao_votes, tmp_path):
    summary = recompute(client, [llmfao_votes], tmp_path, bootstrap=0, progress=False)
    ours = summary["table"].set_index("model").rating
    assert summary["battles"] == 8931 and summary["dropped"] == {}

    votes = pd.read_csv(llmfao_votes)
    models = sorted(set(votes.left) | set(votes.right))
    index = {m: i for i, m in enumerate(models)}
    y = votes.winner.map({"left": 1.0, "right": 0.0, "tie": 0.5}).to_numpy()
    mle = independent_mle(
        votes.left.map(index).to_numpy(), votes.right.map(index).to_numpy(), y, len(models)
    )
    reference = pd.Series(mle + 1000, index=models)  # anchor: mean = 1000
    assert np.abs(ours[models] - reference[models]).max() <= 0.5


def test_recovers_known_strengths(client, tmp_path):
    rng = np.random.default_rng(1)
    strengths = {f"model-{i:02d}": float(s) for i, s in enumerate(rng.normal(1000, 150, 30))}
    simulate(strengths, 200_000, seed=2).to_parquet(tmp_path / "battles.parquet")
    summary = recompute(
        client, [tmp_path / "battles.parquet"], tmp_path / "out", bootstrap=20, progress=False
    )
    table = summary["table"].set_index("model")
    truth = pd.Series(strengths)
    assert spearmanr(table.rating[truth.index], truth).statistic >= 0.99
    # Same scale too: 400 Elo per factor 10 in the odds.
    centred = truth - truth.mean() + 1000
    assert np.abs(table.rating[truth.index] - centred).max() < 40
    assert ((table.lower <= table.rating) & (table.rating <= table.upper)).all()


def test_named_anchor_and_rank_by_ci():
    counts = PairCounts(
        ["a", "b", "c"], np.array([[0, 30, 90.0], [20, 0, 80], [10, 20, 0]]), np.zeros((3, 3))
    )
    dist = bootstrap_ratings(counts, rounds=50, anchor=Anchor("b", 1100))
    assert dist.point[1] == pytest.approx(1100)
    assert np.allclose(dist.rounds[:, 1], 1100)
    assert list(ci_ranks(np.array([10, 5, 0.0]), np.array([12, 11, 6.0]))) == [1, 1, 2]
    assert Anchor.parse("Llama-2-70B-Chat=1100") == Anchor("Llama-2-70B-Chat", 1100.0)
    with pytest.raises(ValueError):
        Anchor.parse("Llama")


def test_unbeaten_and_disconnected_get_finite_ratings_and_warnings():
    models = ["a", "b", "c", "d"]
    wins = np.array([[0, 5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 3], [0, 0, 2, 0.0]])
    theta = fit_bradley_terry(wins)
    assert np.isfinite(theta).all()
    warnings = data_warnings(wins, models)
    assert any("a never lost" in w for w in warnings)
    assert any("b never won" in w for w in warnings)
    assert any("strongly connected groups" in w for w in warnings)


def test_point_fit_is_choix_fit(llmfao_votes):
    """Newton's point fit lands on choix's ILSR answer, on real votes and on degenerate counts."""
    votes = pd.read_csv(llmfao_votes)
    models = sorted(set(votes.left) | set(votes.right))
    index = {m: i for i, m in enumerate(models)}
    outcome = votes.winner.map({"left": 0, "right": 1, "tie": 2}).to_numpy()
    counts = PairCounts.from_codes(
        models, votes.left.map(index).to_numpy(), votes.right.map(index).to_numpy(), outcome
    )
    unbeaten = np.array([[0, 5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 3], [0, 0, 2, 0.0]])
    for comp, alpha in ((counts.comparison_matrix(), 1e-4), (unbeaten, 1e-4), (unbeaten, 0.5)):
        ours, reference = fit_bradley_terry(comp, alpha), fit_with_choix(comp, alpha)
        assert np.abs(ours - reference).max() * 400 / np.log(10) < 0.01


def test_strong_components_match_scipy():
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(0)
    for n, density in ((1, 0.5), (7, 0.1), (40, 0.03), (60, 0.2)):
        edges = rng.random((n, n)) < density
        count, labels = strong_components(edges)
        want, theirs = connected_components(edges, directed=True, connection="strong")
        assert count == want
        # The same partition, whatever the names of its parts.
        assert ((labels[:, None] == labels[None, :]) == (theirs[:, None] == theirs[None, :])).all()


def test_ties_half_or_ignored():
    counts = PairCounts(["a", "b"], np.array([[0, 6.0], [4, 0]]), np.array([[0, 10.0], [10, 0]]))
    half = counts.comparison_matrix("half")
    assert half[0, 1] == 11 and half[1, 0] == 9
    assert counts.comparison_matrix("ignore")[0, 1] == 6
    assert list(counts.win_rate()) == [0.55, 0.45]


def test_online_elo_follows_the_k4_update():
    models = ["a", "b"]
    rating = online_elo(np.array([0, 0]), np.array([1, 1]), np.array(["model_a", "tie"]), models)
    first = 1000 + 4 * (1 - 0.5)
    expected = 1 / (1 + 10 ** ((2000 - first - first) / 400))
    assert rating[0] == pytest.approx(first + 4 * (0.5 - expected))
    assert rating.sum() == pytest.approx(2000)
