"""What `arena judge-eval` writes: report.md (one table, the definitions, the command),
judge_eval.json (every figure), verdicts.parquet (one row per game) and agreement.png."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from core.parquet_io import atomic_path, write_json_atomic, write_parquet_atomic, write_text_atomic
from pipeline.judge_eval.run import VERDICTS

DEFINITIONS = """\
- **Human label**: the crowd's plurality of its x / y / tie votes. The label with
  strictly the most votes wins; when the most votes are shared (x level with y, or
  either level with tie), no side has a majority and the pair is a tie ("a pair
  whose votes split evenly is a tie").
- **Games**: the judge plays each pair twice: game 1 shows answer x as "Answer A"
  and y as "Answer B", game 2 swaps them; scores are mapped back to x / y.
- **Rules** for a pair's verdict: *total*, the summed scores of both games (higher
  wins, equal is a tie); *consistent*, both games must name the same winner, else a
  tie. *discrete* scores are the judge's written 1-10 scores; *expected* ones are
  its probability-weighted scores (sum of k * P(k) over 1-10 at each score).
- **Agree (ties)**: share of pairs with a verdict whose verdict equals the human
  label, all three labels counted (FastChat llm_judge "with ties").
- **Agree (no ties)**: the same among pairs where neither the judge nor the people
  say tie ("without ties").
- **Consistent**: share of pairs, among those whose two games both gave a verdict,
  where both games name the same winner (x, y or tie); position bias lowers it.
- **Tie rate**: ties among the pairs with a verdict.
- **Longer wins**: share of non-tie verdicts that pick the answer with more
  characters, among pairs whose answers differ in length (the people's row is the
  reference for verbosity bias).
- **No verdict**: pairs without a verdict (a game of the pair failed, or a recorded
  judge has none for it); counted here, left out of agreement.
- **Parse errors**: games without a verdict (no readable scores after the retries,
  or no expected scores), and their share of all games."""

AGREEMENT = (("agreement_with_ties", "with ties"), ("agreement_without_ties", "without ties"))
BIASES = (("tie_rate", "tie rate"), ("longer_wins", "longer answer wins"))
COLUMNS = (
    ("judge", "name", None),
    ("scores", "scores", None),
    ("rule", "rule", None),
    ("pairs", "pairs", "int"),
    ("no verdict", "no_verdict", "int"),
    ("agree (ties)", "agreement_with_ties", "pct"),
    ("n", "n_with_ties", "int"),
    ("agree (no ties)", "agreement_without_ties", "pct"),
    ("n", "n_without_ties", "int"),
    ("consistent", "consistency", "pct"),
    ("n", "n_consistency", "int"),
    ("tie rate", "tie_rate", "pct"),
    ("longer wins", "longer_wins", "pct"),
    ("n", "n_longer", "int"),
    ("parse errors", "parse_errors", "int"),
    ("rate", "parse_error_rate", "pct"),
)


def _cell(value, kind) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return str(value)


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c[0] for c in COLUMNS) + " |"
    rule = "|" + "|".join("---" if c[2] is None else "---:" for c in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(r.get(k), kind) for _, k, kind in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def render(result: dict) -> str:
    """report.md: the table (people's row last), the counts, quarantine, definitions."""
    labels = result["human_labels"]
    lines = [
        f"# Judge agreement with people: {result['judge']}",
        "",
        f"Pairs file `{result['pairs_file']}`: {result['rows_read']} rows,"
        f" {result['quarantined']} quarantined, {result['pairs']} pairs evaluated"
        + (f" (a sample of {result['limit']}, by a hash of pair_id)" if result["limit"] else "")
        + f". Human labels: x {labels['x']}, y {labels['y']}, tie {labels['tie']}.",
        f"Games: {result['run']['games']} ({result['run']['judged_now']} judged now,"
        f" {result['run']['from_cache']} from the cache).",
        "",
        table([*result["rows"], result["people"]]),
        "",
    ]
    for rec in result["recorded"]:
        lines.append(
            f"- {rec['name']}: {rec['source']}; {rec['verdicts']} verdicts,"
            f" {rec['unmatched']} for pairs not evaluated here, {len(rec['quarantine'])} rows"
            " quarantined."
        )
    quarantine = result["quarantine"] + [q for r in result["recorded"] for q in r["quarantine"]]
    if quarantine:
        lines += ["", f"## Quarantined rows ({len(quarantine)})", ""]
        lines += [f"- {q['file']} line {q['line']}: {q['reason']}" for q in quarantine[:50]]
        if len(quarantine) > 50:
            lines.append(f"- ... {len(quarantine) - 50} more in judge_eval.json")
    lines += ["", "## Definitions", "", DEFINITIONS, "", "## Command", "", "```"]
    lines += [result["command"], "```", ""]
    return "\n".join(lines)


def _label(row: dict) -> str:
    shown = (row["name"], row["scores"], row["rule"])
    return " ".join(x for x in shown if x and x not in ("recorded", "votes"))


def plot(result: dict, path: Path) -> None:
    """Agreement with and without ties per row; tie rate and longer-answer wins beside it
    (people's row included as the reference). A figure with nothing to count reads n/a."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np

    judges = result["rows"]
    everyone = [*judges, result["people"]]
    panels = (
        ("agreement with the crowd's label", judges, AGREEMENT),
        ("tie rate and longer answer wins (people: reference)", everyone, BIASES),
    )
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(everyone) + 2.2))
    for ax, (title, rows, keys) in zip(axes, panels):
        y = np.arange(len(rows))
        for k, (key, name) in enumerate(keys):
            shares = [r[key] for r in rows]
            bars = ax.barh(
                y + (k - 0.5) * 0.38, [100 * (v or 0) for v in shares], height=0.38, label=name
            )
            texts = ["n/a" if v is None else f"{100 * v:.0f}%" for v in shares]
            ax.bar_label(bars, texts, fontsize=7, padding=2)
        ax.set_yticks(y, [_label(r) for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 110)
        ax.set_xlabel("%")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(title, fontsize=10)
        ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.3 / len(rows)), ncol=2
        )
    fig.suptitle(f"{result['judge']} on {result['pairs']} labelled pairs", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


# What `write_report` writes in its folder (jobs/outputs.py: nothing else may be there).
OUTPUTS = ("verdicts.parquet", "judge_eval.json", "report.md", "agreement.png")


def write_report(result: dict, games: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(pa.Table.from_pylist(games, VERDICTS), out / "verdicts.parquet")
    write_json_atomic(result, out / "judge_eval.json")
    write_text_atomic(render(result), out / "report.md")
    plot(result, out / "agreement.png")
