"""`arena elo`: formats, files, filters, style control, consistency and bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from jobs.cli import main
from pipeline.flows.ratings import RatingsConfig, rate_battles
from tests.pipeline.ratings.conftest import simulate


def recompute(client, paths, out, progress=False, **options):
    """The ratings flow with RatingsConfig fields as keywords."""
    return rate_battles(client, paths, out, RatingsConfig(**options), progress=progress)


STRENGTHS = {"strong": 1200.0, "mid": 1000.0, "weak": 800.0, "weakest": 700.0}


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_cli_writes_every_output(llmfao_votes, tmp_path, capsys):
    out = tmp_path / "board"
    assert (
        main(["elo", str(llmfao_votes), "--out", str(out), "--bootstrap", "20", "--online-elo"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "8931 battles counted, 0 dropped" in printed
    for name in (
        "leaderboard.csv",
        "leaderboard.md",
        "leaderboard.parquet",
        "ratings.png",
        "win_rates.png",
    ):
        assert (out / name).stat().st_size > 0
    table = pd.read_csv(out / "leaderboard.csv")
    assert list(table.columns[:7]) == [
        "rank",
        "model",
        "rating",
        "lower",
        "upper",
        "battles",
        "win_rate",
    ]
    assert table.battles.sum() == 2 * 8931 and len(table) == 59
    assert table.online_elo.notna().all()
    assert table.rating.is_monotonic_decreasing


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


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file"),
        ("a,b,c\n1,2,3\n", "no battle columns; need model_a, model_b, winner"),
        ("model_a,model_b,winner\n", "no battles to rate"),
        (
            "model_a,model_b,winner\nx,y,maybe\n",
            "no battles to rate (dropped: {\"unknown winner value 'maybe'\": 1}",
        ),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "battles.csv"
    path.write_text(content)
    assert main(["elo", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0"]) == 2
    error = last_error(capsys)
    assert error.startswith("arena elo: error:") and message.replace('"', "'") in error.replace(
        '"', "'"
    )


def test_unknown_anchor_model_is_refused(llmfao_votes, tmp_path, capsys):
    assert main(["elo", str(llmfao_votes), "--out", str(tmp_path), "--anchor", "GPT-9=1100"]) == 2
    assert "anchor model 'GPT-9' has no battles" in last_error(capsys)


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


def test_a_small_elo_starts_no_cluster_and_no_heavy_import(llmfao_votes, tmp_path):
    """`arena elo` on one small file works in its own process: no Dask, and none of the
    libraries whose imports cost more than the ratings (pandas, scipy, choix, matplotlib)."""
    import subprocess
    import sys

    out = tmp_path / "board"
    code = (
        "import sys; from jobs.cli import main; "
        f"assert main(['elo', {str(llmfao_votes)!r}, '--out', {str(out)!r}, '--bootstrap', '20']) == 0; "
        "heavy = [m for m in ('pandas', 'scipy', 'choix', 'matplotlib', 'dask', 'distributed') "
        "if m in sys.modules]; print('heavy:', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "heavy: []" in done.stdout
    assert "8931 battles counted" in done.stdout
    table = pd.read_csv(out / "leaderboard.csv")
    assert len(table) == 59 and table.rating.is_monotonic_decreasing


def test_csv_and_parquet_of_battles_with_answer_texts_rate_alike(shared_data, tmp_path):
    """Real answers (LLMFAO pairs: multi-line texts, quotes, markdown, one empty) as CSV,
    a standard one whose quoted cells span lines, and as Parquet: the same leaderboard,
    style control included."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs = [json.loads(line) for line in open(shared_data / "judging" / "llmfao_pairs_dev.jsonl")]
    rows = []
    for p in pairs[:300]:
        votes = p["crowd_votes"]
        winner = max(("x", "y", "tie"), key=lambda k: votes.get(k, 0))
        rows.append(
            {
                "model_a": p["model_x"],
                "model_b": p["model_y"],
                "winner": {"x": "model_a", "y": "model_b", "tie": "tie"}[winner],
                "answer_a": p["answer_x"],
                "answer_b": p["answer_y"],
            }
        )
    assert any("\n" in r["answer_a"] and '"' in r["answer_a"] for r in rows)
    with open(tmp_path / "b.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    boards = []
    for name in ("b.csv", "b.parquet"):
        out = tmp_path / f"board-{name}"
        argv = ["elo", str(tmp_path / name), "--out", str(out), "--style-control"]
        assert main([*argv, "--bootstrap", "10"]) == 0
        boards.append((out / "leaderboard.csv").read_text())
    assert boards[0] == boards[1]
    assert "rating_style_controlled" in boards[0].splitlines()[0]
