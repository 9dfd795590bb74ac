"""How well a judge agrees with people: pure functions over per-pair verdicts.

Verdicts and human labels are x, y or tie; None is a pair without a verdict
(a judge game that failed, or a pair a recorded judge has no verdict for). The
figures follow FastChat's llm_judge compute_agreement.py:
- agreement with ties: the verdict equals the human label (all three labels
  count), among pairs with a verdict;
- agreement without ties: the same among pairs where neither the judge nor the
  people say tie;
- position consistency: both games name the same winner (x, y or tie), among
  pairs whose two games both gave a verdict; a judge that favours "Answer A"
  fails it;
- tie rate: ties among pairs with a verdict;
- longer wins: the verdict picks the answer with more characters, among non-tie
  verdicts on pairs whose answers differ in length (verbosity bias; the same for
  people is the reference);
- parse errors: games without a verdict, and their share of all games. A pair
  with such a game has no verdict: it is counted, never dropped silently, and
  left out of agreement.
The two games of a pair combine by the rules of `arena battle --combine`
(pipeline/battle/combine.py): total (summed scores, higher wins, equal is a tie)
or consistent (both games must pick the same winner, else a tie).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.battle.combine import combine_pair, game_winner

RULES = ("total", "consistent")
_SIDE = {"model_a": "x", "model_b": "y", "tie": "tie"}


@dataclass(frozen=True)
class Game:
    """One game's scores, mapped back to the pair's sides; both None when `error` is set."""

    score_x: float | None
    score_y: float | None
    error: str | None = None

    @property
    def winner(self) -> str | None:
        return _SIDE.get(game_winner(self.score_x, self.score_y))


def pair_verdict(game1: Game, game2: Game, rule: str) -> tuple[str | None, bool | None]:
    """(x / y / tie, or None when a game has no verdict; whether the games agree)."""
    games = [
        {
            "score_a": g.score_x,
            "score_b": g.score_y,
            "winner": game_winner(g.score_x, g.score_y),
            "error": g.error,
        }
        for g in (game1, game2)
    ]
    pair = combine_pair(*games, rule)
    return _SIDE.get(pair["winner"]), pair["consistent"]


def share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def agreement(verdicts: list[str | None], humans: list[str]) -> dict:
    """Agreement with the human labels, with and without ties, and the n of each."""
    judged = [(v, h) for v, h in zip(verdicts, humans, strict=True) if v is not None]
    decided = [(v, h) for v, h in judged if v != "tie" and h != "tie"]
    return {
        "agreement_with_ties": share(sum(v == h for v, h in judged), len(judged)),
        "n_with_ties": len(judged),
        "agreement_without_ties": share(sum(v == h for v, h in decided), len(decided)),
        "n_without_ties": len(decided),
    }


def tie_rate(verdicts: list[str | None]) -> dict:
    given = [v for v in verdicts if v is not None]
    return {"tie_rate": share(given.count("tie"), len(given))}


def longer_wins(verdicts: list[str | None], longer: list[str | None]) -> dict:
    """Share of non-tie verdicts that pick the longer answer (pairs of unequal length)."""
    decided = [(v, s) for v, s in zip(verdicts, longer, strict=True) if v in ("x", "y") and s]
    return {
        "longer_wins": share(sum(v == s for v, s in decided), len(decided)),
        "n_longer": len(decided),
    }


def verdict_row(verdicts: list[str | None], humans: list[str], longer: list[str | None]) -> dict:
    """The figures of any judge's pair verdicts: recorded ones stop here."""
    return {
        "pairs": len(verdicts),
        "with_verdict": sum(v is not None for v in verdicts),
        "no_verdict": sum(v is None for v in verdicts),
        **agreement(verdicts, humans),
        **tie_rate(verdicts),
        **longer_wins(verdicts, longer),
        "consistency": None,
        "n_consistency": None,
        "games": None,
        "parse_errors": None,
        "parse_error_rate": None,
    }


def judged_row(
    games: list[tuple[Game, Game]], humans: list[str], longer: list[str | None], rule: str
) -> dict:
    """A judge run now: both games of every pair combined by `rule`, plus the game-level
    figures (position consistency, parse errors)."""
    verdicts, agree = [], []
    for game1, game2 in games:
        verdict, consistent = pair_verdict(game1, game2, rule)
        verdicts.append(verdict)
        agree.append(consistent)
    both = [c for c in agree if c is not None]
    failed = sum(g.winner is None for pair in games for g in pair)
    return {
        **verdict_row(verdicts, humans, longer),
        "consistency": share(sum(both), len(both)),
        "n_consistency": len(both),
        "games": 2 * len(games),
        "parse_errors": failed,
        "parse_error_rate": share(failed, 2 * len(games)),
    }


def people_row(humans: list[str], longer: list[str | None]) -> dict:
    """The reference: the crowd's own tie rate and longer-answer wins."""
    row = verdict_row(humans, humans, longer)
    for key in ("agreement_with_ties", "n_with_ties", "agreement_without_ties", "n_without_ties"):
        row[key] = None  # agreement with themselves says nothing
    return row
