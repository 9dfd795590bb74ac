"""What a battle run reports: counts, the win matrix, errors, inconsistency, tokens, speed,
and its cost per stage and model (pipeline.battle.cost).

`summarize` returns a JSON-able dict; `render` turns it into the Markdown that
`arena battle` prints and writes beside the records.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.battle.cost import cost_markdown
from pipeline.battle.prompts import lacks


def win_matrix(combined: pa.Table, models: list[str]) -> dict[str, dict[str, int]]:
    """wins[x][y]: prompts on which x beat y (pairs with a winner; ties not counted)."""
    wins = {x: {y: 0 for y in models} for x in models}
    for r in combined.select(["model_a", "model_b", "winner"]).to_pylist():
        if r["winner"] in ("model_a", "model_b"):
            won = r[r["winner"]]
            lost = r["model_b"] if won == r["model_a"] else r["model_a"]
            wins.setdefault(won, {}).setdefault(lost, 0)
            wins[won][lost] += 1
    return wins


def no_verdict(records: pa.Table) -> str | None:
    """The reason a run decided nothing (every game has an error), else None: such a run
    must fail loudly, not hand an empty leaderboard on."""
    errors = records.column("error").to_pylist()
    if not errors or None in errors:
        return None
    common, count = Counter(errors).most_common(1)[0]
    return f"no verdict: all {len(errors)} games failed: {common} ({count} of {len(errors)})"


def summarize(
    records: pa.Table, combined: pa.Table, models: list[str], judge: str, rule: str, run: dict
) -> dict:
    """`run`: prompts_left_out (pipeline.battle.prompts.answerable), answers (per model:
    needed, cached, generated, failed, tokens), judge (judged, reused, errors, tokens,
    seconds), seconds of this run and its cost block."""
    errors = records.filter(pc.is_valid(records.column("error")))
    judge_failures = errors.filter(
        pc.invert(pc.starts_with(errors.column("error"), "no answer from"))
    ).num_rows
    valid_pairs = combined.filter(pc.is_valid(combined.column("consistent")))
    inconsistent = valid_pairs.filter(pc.invert(valid_pairs.column("consistent"))).num_rows
    winners = pc.value_counts(combined.column("winner")).to_pylist()
    outcome = {(w["values"] or "error"): w["counts"] for w in winners}
    judged = run["judge"]["judged"]
    return {
        "judge": judge,
        "no_verdict": no_verdict(records),
        "combine": rule,
        "prompts": len(set(records.column("prompt_id").to_pylist())),
        "prompts_left_out": run["prompts_left_out"],
        "models": models,
        "battles": records.num_rows,
        "pairs": combined.num_rows,
        "games_judged_now": judged,
        "games_from_cache": run["judge"]["reused"],
        "judge_errors": judge_failures,
        "judge_error_rate": round(judge_failures / records.num_rows, 4) if records.num_rows else 0,
        "missing_answer_games": errors.num_rows - judge_failures,
        "retried_games_now": run["judge"]["retried"],
        "inconsistent_pairs": inconsistent,
        "inconsistency_rate": round(inconsistent / valid_pairs.num_rows, 4)
        if valid_pairs.num_rows
        else None,
        "pair_outcomes": {k: outcome.get(k, 0) for k in ("model_a", "model_b", "tie", "error")},
        "win_matrix": win_matrix(combined, models),
        "answers": run["answers"],
        "answers_generated_now": sum(a["generated"] for a in run["answers"].values()),
        "answers_from_cache": sum(a["cached"] for a in run["answers"].values()),
        "tokens": {
            "answers_prompt": sum(a["prompt_tokens"] for a in run["answers"].values()),
            "answers_completion": sum(a["completion_tokens"] for a in run["answers"].values()),
            "judge_prompt": run["judge"]["prompt_tokens"],
            "judge_completion": run["judge"]["completion_tokens"],
        },
        "seconds": {k: round(v, 2) for k, v in run["seconds"].items()},
        "battles_per_hour": round(judged / run["seconds"]["judge"] * 3600, 1)
        if judged and run["seconds"]["judge"] > 0
        else None,
        "cost": run["cost"],
    }


def render(s: dict) -> str:
    """The summary as Markdown: headline, answers, win matrix, cost."""
    left_out = s["prompts_left_out"]
    lines = [
        f"# Battles judged by {s['judge']}",
        "",
        *([f"**{s['no_verdict']}**", ""] if s.get("no_verdict") else []),
        f"- {s['battles']} battle records ({s['pairs']} pairs x 2 games) on {s['prompts']} prompts"
        f" among {len(s['models'])} models",
        *(
            [f"- left out {left_out['prompts']} of {left_out['of']} prompts: {lacks(left_out)}"]
            if left_out["prompts"]
            else []
        ),
        *(
            [
                f"- left out {left_out['no_user_turn']} eval-set rows with no user turn (null or empty messages)"
            ]
            if left_out.get("no_user_turn")
            else []
        ),
        *(
            [f"- left out {left_out['repeated']} eval-set rows repeating a prompt_id"]
            if left_out.get("repeated")
            else []
        ),
        f"- judged now: {s['games_judged_now']} games; from cache: {s['games_from_cache']}"
        f" ({s['retried_games_now']} needed a retry)",
        f"- judge errors: {s['judge_errors']} ({s['judge_error_rate']:.1%} of games);"
        f" games without an answer: {s['missing_answer_games']}",
        f"- inconsistent pairs (the two games disagree): {s['inconsistent_pairs']}"
        + (f" ({s['inconsistency_rate']:.1%})" if s["inconsistency_rate"] is not None else ""),
        f"- pairs by rule `{s['combine']}`: "
        + ", ".join(f"{k} {v}" for k, v in s["pair_outcomes"].items()),
        f"- answers generated now: {s['answers_generated_now']}; reused from cache:"
        f" {s['answers_from_cache']}",
        "- tokens: " + ", ".join(f"{k} {v}" for k, v in s["tokens"].items()),
        "- seconds: "
        + ", ".join(f"{k} {v}" for k, v in s["seconds"].items())
        + (
            f"; {s['battles_per_hour']} battles per hour (judge stage)"
            if s["battles_per_hour"]
            else ""
        ),
        "",
        "| model | needed | from cache | generated | failed |",
        "|---|---|---|---|---|",
    ]
    for name, a in s["answers"].items():
        lines.append(
            f"| {name} | {a['needed']} | {a['cached']} | {a['generated']} | {a['failed']} |"
        )
    models = s["models"]
    lines += ["", "Wins (row beat column, pairs combined):", ""]
    lines.append("| | " + " | ".join(models) + " |")
    lines.append("|---" * (len(models) + 1) + "|")
    for x in models:
        cells = ["-" if x == y else str(s["win_matrix"].get(x, {}).get(y, 0)) for y in models]
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    if s.get("cost"):
        lines += ["", "Cost of this run (what the caches held cost nothing now):", ""]
        lines.append(cost_markdown(s["cost"]).rstrip())
    return "\n".join(lines) + "\n"
