"""The report's rows: the judge's games and recorded verdicts, lined up with the pairs.

Rows, in order: the judge run now with its written (discrete) scores, by rule
total then consistent; the same with its probability-weighted (expected) scores
when its verdicts carry them; one row per recorded judge (the pairs file's
gpt4_verdict as "gpt-4 (recorded)", then each `--recorded` file). The people's
row (their tie rate and longer-answer wins) is the reference, kept apart.
"""

from __future__ import annotations

from pipeline.judge_eval.metrics import RULES, Game, judged_row, people_row, verdict_row
from pipeline.judge_eval.pairs import LabelledPair, RecordedVerdicts

SCORES = {"discrete": ("score_x", "score_y"), "expected": ("expected_x", "expected_y")}


def pair_games(games: list[dict], scores: str) -> list[tuple[Game, Game]]:
    """(game 1, game 2) of every pair from the per-game rows (two a pair, in pair order).
    A game without `scores` is an error (its own, or "no expected scores")."""
    fx, fy = SCORES[scores]
    out = []
    for i in range(0, len(games), 2):
        pair = []
        for g in games[i : i + 2]:
            x, y = g[fx], g[fy]
            error = g["error"] or (f"no {scores} scores" if x is None or y is None else None)
            pair.append(Game(None, None, error) if error else Game(x, y))
        out.append((pair[0], pair[1]))
    return out


def judge_rows(name: str, pairs: list[LabelledPair], games: list[dict]) -> list[dict]:
    """The judge's rows: discrete scores, and expected ones where any game has them."""
    humans, longer = [p.human for p in pairs], [p.longer for p in pairs]
    kinds = ["discrete"] + (["expected"] if any(g["expected_x"] is not None for g in games) else [])
    return [
        {"name": name, "scores": scores, "rule": rule, **judged_row(by_pair, humans, longer, rule)}
        for scores in kinds
        for by_pair in [pair_games(games, scores)]
        for rule in RULES
    ]


def recorded_rows(pairs: list[LabelledPair], recorded: list[RecordedVerdicts]) -> list[dict]:
    """One row per recorded judge; a pair it has no verdict for counts as no verdict."""
    humans, longer = [p.human for p in pairs], [p.longer for p in pairs]
    return [
        {
            "name": r.name,
            "scores": "recorded",
            "rule": None,
            **verdict_row([r.verdicts.get(p.pair_id) for p in pairs], humans, longer),
        }
        for r in recorded
    ]


def people_reference(pairs: list[LabelledPair]) -> dict:
    row = people_row([p.human for p in pairs], [p.longer for p in pairs])
    return {"name": "people (crowd plurality)", "scores": "votes", "rule": None, **row}
