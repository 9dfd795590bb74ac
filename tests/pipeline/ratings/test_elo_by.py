"""Ratings by group (`arena elo --by COLUMN`): one leaderboard per value (the paper's
Diverse / Hard / Mix, or per cluster) beside the whole's, and a side-by-side table. A
group is rated exactly as its battles alone are; a Mix prompt in both subsets counts in
each."""

import numpy as np
import pandas as pd
import pytest

from core.errors import UserError
from pipeline.flows.ratings import RatingsConfig, rate_battles, ratings_report
from tests.pipeline.ratings.conftest import simulate

STRENGTHS = {"strong": 1200.0, "mid": 1000.0, "weak": 800.0}


def rate(client, path, out, **options):
    return rate_battles(client, [path], out, RatingsConfig(**options), progress=False)


@pytest.fixture(scope="module")
def mix_battles(tmp_path_factory):
    """Simulated battles on a Mix set: subset diverse / hard / both, 12 clusters, a few
    rows without a subset."""
    battles = simulate(STRENGTHS, 4000, seed=5, tie_share=0.1)
    rng = np.random.default_rng(1)
    battles["subset"] = rng.choice(["diverse", "hard", "both"], len(battles), p=[0.45, 0.4, 0.15])
    battles["cluster"] = rng.integers(0, 12, len(battles))
    battles.loc[:19, "subset"] = None
    path = tmp_path_factory.mktemp("mix") / "battles.parquet"
    battles.to_parquet(path)
    return path, battles


def test_by_subset_rates_each_subset_as_its_own_battles(mix_battles, tmp_path):
    path, battles = mix_battles
    out = tmp_path / "board"
    summary = rate(None, path, out, by="subset", bootstrap=20)
    printed = ratings_report(summary, out)
    assert "| model | diverse | hard | all |" in printed
    assert "20 battles have no subset: counted in all only" in printed
    for value, kept in (("diverse", ("diverse", "both")), ("hard", ("hard", "both"))):
        board = pd.read_csv(out / "by" / "subset" / value / "leaderboard.csv")
        alone = tmp_path / f"{value}.parquet"
        battles[battles.subset.isin(kept)].to_parquet(alone)
        rate(None, alone, tmp_path / value, bootstrap=20)
        pd.testing.assert_frame_equal(board, pd.read_csv(tmp_path / value / "leaderboard.csv"))
    assert not (out / "by" / "subset" / "both").exists()  # counted in the others instead
    whole = pd.read_csv(out / "leaderboard.csv")
    table = pd.read_csv(out / "by" / "subset.csv").set_index("model")
    assert list(table.index) == list(whole.model)  # best first, as the whole ranks them
    assert np.allclose(table.all_rating, whole.rating)
    assert table.diverse_battles.sum() == 2 * battles.subset.isin(["diverse", "both"]).sum()
    markdown = (out / "by" / "subset.md").read_text().splitlines()
    assert markdown[0] == "| model | diverse | hard | all |"
    assert markdown[-1].startswith("| battles | ") and markdown[-1].endswith(" | 4000 |")


def test_by_cluster_on_workers_matches_one_process(mix_battles, client, tmp_path):
    path, battles = mix_battles
    here = rate(None, path, tmp_path / "here", by="cluster", bootstrap=10)
    there = rate(client, path, tmp_path / "there", by="cluster", bootstrap=10)
    assert here["by"]["groups"] == there["by"]["groups"]
    assert list(here["by"]["groups"]) == [str(c) for c in range(12)]  # numeric order
    for cluster in ("0", "11"):
        a = pd.read_csv(tmp_path / "here" / "by" / "cluster" / cluster / "leaderboard.csv")
        b = pd.read_csv(tmp_path / "there" / "by" / "cluster" / cluster / "leaderboard.csv")
        pd.testing.assert_frame_equal(a, b)
        assert a.battles.sum() == 2 * (battles.cluster == int(cluster)).sum()


def test_a_group_that_cannot_be_rated_is_a_warning(tmp_path):
    battles = simulate(STRENGTHS, 600, seed=2)
    battles["subset"] = np.where(battles.model_a == "strong", "hard", "diverse")
    solo = battles.iloc[:1].assign(model_a="solo", model_b="mid", subset="alone")
    pd.concat([battles, solo]).to_parquet(tmp_path / "b.parquet")
    summary = rate(None, tmp_path / "b.parquet", tmp_path / "o", by="subset", bootstrap=5,
                   anchor="weak=1000")  # fmt: skip
    # The anchor battled in diverse and hard, not in the solo group: that one is not rated.
    warning = "subset=alone: not rated (anchor model 'weak' has no battles)"
    assert warning in summary["by"]["warnings"]
    assert warning in ratings_report(summary, tmp_path / "o")
    assert (tmp_path / "o" / "by" / "subset" / "hard" / "leaderboard.csv").exists()


@pytest.mark.parametrize(
    "by, message",
    [
        ("nothere", "--by nothere: no such column (columns: model_a, model_b, winner"),
        (" ", "--by is empty"),
        ("scores", "--by scores: a column of list<element: double>"),
    ],
)
def test_a_bad_by_is_a_user_error(tmp_path, by, message):
    battles = simulate(STRENGTHS, 50, seed=1)
    battles["scores"] = [[1.0, 2.0]] * len(battles)
    battles.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(UserError) as caught:
        rate(None, tmp_path / "b.parquet", tmp_path / "o", by=by)
    assert message in str(caught.value) and "\n" not in str(caught.value)
