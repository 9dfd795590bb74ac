"""The ratings flow: formats, files, filters, style control, consistency, in process and on a
cluster (the `arena elo` command: tests/jobs/test_elo_cli.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.flows.ratings import RatingsConfig, rate_battles
from tests.pipeline.ratings.conftest import simulate


def recompute(client, paths, out, progress=False, **options):
    """The ratings flow with RatingsConfig fields as keywords."""
    return rate_battles(client, paths, out, RatingsConfig(**options), progress=progress)


STRENGTHS = {"strong": 1200.0, "mid": 1000.0, "weak": 800.0, "weakest": 700.0}


def test_formats_combine_and_match_one_file(client, tmp_path):
    battles = simulate(STRENGTHS, 3000, seed=3, tie_share=0.1)
    battles.to_parquet(tmp_path / "all.parquet")
    battles.iloc[:1000].to_csv(tmp_path / "part1.csv", index=False)
    battles.iloc[1000:2000].to_json(tmp_path / "part2.jsonl", orient="records", lines=True)
    left_right = battles.iloc[2000:].rename(columns={"model_a": "left", "model_b": "right"})
    left_right["winner"] = left_right.winner.map(
        {"model_a": "left", "model_b": "right", "tie": "tie"}
    )
    left_right.to_csv(tmp_path / "part3.csv", index=False)
    one = recompute(client, [tmp_path / "all.parquet"], tmp_path / "a", bootstrap=0, progress=False)
    three = recompute(
        client,
        [tmp_path / p for p in ("part1.csv", "part2.jsonl", "part3.csv")],
        tmp_path / "b",
        bootstrap=0,
        progress=False,
    )
    assert one["battles"] == three["battles"] == 3000
    pd.testing.assert_frame_equal(one["table"], three["table"])


def test_our_records_with_judge_errors_and_filters(client, tmp_path):
    battles = simulate(STRENGTHS, 2000, seed=4)
    battles["judge"] = np.where(np.arange(2000) % 2, "judge-x", "judge-y")
    battles.loc[battles.index[:7], "winner"] = None  # the judge failed: never a win, never a tie
    battles.loc[battles.index[7:10], "winner"] = "model_c"
    battles.to_parquet(tmp_path / "records.parquet")
    summary = recompute(
        client, [tmp_path / "records.parquet"], tmp_path / "o", bootstrap=0, progress=False
    )
    assert summary["dropped"] == {"judge error (no winner)": 7, "unknown winner value 'model_c'": 3}
    assert summary["battles"] == 1990
    judged = recompute(
        client,
        [tmp_path / "records.parquet"],
        tmp_path / "j",
        bootstrap=0,
        judge=("judge-x",),
        progress=False,
    )
    assert (
        judged["filtered"] == 1000 and judged["battles"] + sum(judged["dropped"].values()) == 1000
    )
    some = recompute(
        client,
        [tmp_path / "records.parquet"],
        tmp_path / "m",
        bootstrap=0,
        models=("strong", "mid", "ghost"),
        progress=False,
    )
    assert set(some["table"].model) == {"strong", "mid"}
    assert any("no battles for ghost" in w for w in some["warnings"])


def test_style_control_separates_length_from_strength(client, tmp_path):
    rng = np.random.default_rng(5)
    n = 6000
    models = np.array(["verbose", "terse", "plain"])
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    length = {"verbose": 2000, "terse": 200, "plain": 800}
    len_a = np.array([length[m] for m in models[a]]) * rng.uniform(0.5, 1.5, n)
    len_b = np.array([length[m] for m in models[b]]) * rng.uniform(0.5, 1.5, n)
    # Equal strength: the judge prefers the longer answer, nothing else.
    p_a = 1 / (1 + np.exp(-3 * (len_a - len_b) / (len_a + len_b)))
    winner = np.where(rng.random(n) < p_a, "model_a", "model_b")
    pd.DataFrame(
        {
            "model_a": models[a],
            "model_b": models[b],
            "winner": winner,
            "len_a": len_a,
            "len_b": len_b,
        }
    ).to_parquet(tmp_path / "b.parquet")
    summary = recompute(
        client,
        [tmp_path / "b.parquet"],
        tmp_path / "o",
        bootstrap=0,
        style_control=True,
        progress=False,
    )
    table = summary["table"].set_index("model")
    assert table.rating["verbose"] - table.rating["terse"] > 100  # plain BT rewards length
    controlled = table.rating_style_controlled
    assert controlled.max() - controlled.min() < 25
    assert summary["style_coefficients"]["length"] > 0.5


def test_consistency_with_a_reference(client, tmp_path):
    simulate(STRENGTHS, 20_000, seed=6).to_parquet(tmp_path / "b.parquet")
    same = pd.DataFrame({"model": list(STRENGTHS), "rating": list(STRENGTHS.values())})
    same.to_csv(tmp_path / "ref.csv", index=False)
    summary = recompute(
        client,
        [tmp_path / "b.parquet"],
        tmp_path / "o",
        reference=tmp_path / "ref.csv",
        progress=False,
    )
    c = summary["consistency"]
    assert c["spearman"] == pytest.approx(1.0)
    assert c["agreement_with_ci"] == pytest.approx(1.0) and c["separability"] == pytest.approx(1.0)
    assert c["brier"] < 0.1
    flipped = same.assign(rating=-same.rating)
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    summary = recompute(
        client,
        [tmp_path / "b.parquet"],
        tmp_path / "o2",
        reference=tmp_path / "flipped.csv",
        progress=False,
    )
    assert summary["consistency"]["spearman"] == pytest.approx(-1.0)
    assert summary["consistency"]["agreement_with_ci"] == pytest.approx(-1.0)
    assert json.loads((tmp_path / "o2" / "summary.json").read_text())["consistency"]["brier"] > 0.5


def test_in_process_counts_equal_the_cluster_counts(client, tmp_path):
    """The same files counted in this process and as tasks on a cluster: the same leaderboard,
    drops and filters, with nulls, unknown winners, self-battles and every format."""
    battles = simulate(STRENGTHS, 4000, seed=8, tie_share=0.1)
    battles.loc[battles.index[:5], "winner"] = None
    battles.loc[battles.index[5:9], "winner"] = "model_c"
    battles.loc[battles.index[9:12], "model_b"] = None
    battles.loc[battles.index[12:14], "model_b"] = battles.model_a[battles.index[12:14]]
    battles.iloc[:1500].to_parquet(tmp_path / "a.parquet", row_group_size=400)
    battles.iloc[1500:3000].to_csv(tmp_path / "b.csv", index=False)
    battles.iloc[3000:].to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    paths = [tmp_path / n for n in ("a.parquet", "b.csv", "c.jsonl")]
    here = recompute(None, paths, tmp_path / "here", bootstrap=10, models=("strong", "mid", "weak"))
    there = recompute(
        client, paths, tmp_path / "there", bootstrap=10, models=("strong", "mid", "weak")
    )
    pd.testing.assert_frame_equal(here["table"], there["table"])
    assert here["dropped"] == there["dropped"] and here["filtered"] == there["filtered"]
    assert here["dropped"]["judge error (no winner)"] + here["filtered"] > 0
    assert set(here["table"].model) == {"strong", "mid", "weak"}
