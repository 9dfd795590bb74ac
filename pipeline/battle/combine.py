"""From scores to winners: one game, then the two games of a pair.

Rules for the pair (`--combine`):
- total (default, Arena Learning): the summed scores of both games decide;
  equal sums are a tie.
- consistent (FastChat's llm_judge): the game winners must agree; when they
  do not (a position-biased judge), the pair is a tie.
Either way, a pair with a failed game has no winner (null) and carries the
error: a judge failure is never a win and never a tie. A pair is inconsistent
when both games have a winner and the two differ.
"""

from __future__ import annotations

import math


def game_winner(score_a: float | None, score_b: float | None) -> str | None:
    if score_a is None or score_b is None or math.isnan(score_a) or math.isnan(score_b):
        return None
    if score_a > score_b:
        return "model_a"
    if score_b > score_a:
        return "model_b"
    return "tie"


def combine_pair(game1: dict, game2: dict, rule: str) -> dict:
    """`game1`/`game2`: dicts with score_a, score_b (model-oriented), winner, error.
    Returns score_a, score_b (totals), winner, consistent, error for the pair."""
    errors = [
        f"game {n}: {g['error'] or 'no verdict'}"
        for n, g in ((1, game1), (2, game2))
        if g["winner"] is None
    ]
    if errors:
        return {
            "score_a": None,
            "score_b": None,
            "winner": None,
            "consistent": None,
            "error": "; ".join(errors),
        }
    total_a = game1["score_a"] + game2["score_a"]
    total_b = game1["score_b"] + game2["score_b"]
    consistent = game1["winner"] == game2["winner"]
    if rule == "total":
        winner = game_winner(total_a, total_b)
    elif rule == "consistent":
        winner = game1["winner"] if consistent else "tie"
    else:
        raise ValueError(f"unknown combine rule {rule!r}")
    return {
        "score_a": total_a,
        "score_b": total_b,
        "winner": winner,
        "consistent": consistent,
        "error": None,
    }
