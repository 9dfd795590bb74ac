"""`arena elo`: every output, bad input as one-line errors, a small run without a cluster
or heavy imports, and battles with answer texts as CSV and Parquet."""

import json

import pandas as pd
import pytest

from jobs.cli import main


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
