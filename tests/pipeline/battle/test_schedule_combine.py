"""Schedules (who meets whom on which prompt) and the rules that combine two games."""

from __future__ import annotations

import pytest

from core.errors import UserError
from pipeline.battle.combine import combine_pair, game_winner
from pipeline.battle.config import BattleConfig
from pipeline.battle.schedule import check_schedule, schedule

MODELS = ["m3", "m1", "m2", "m4"]


def test_all_pairs_is_every_unordered_pair_on_every_prompt():
    battles = schedule(["p1", "p2"], MODELS, BattleConfig())
    assert len(battles) == 2 * 6
    assert all(a < b for _, a, b in battles)
    assert len(set(battles)) == len(battles)


def test_a_new_model_adds_only_its_own_pairs():
    before = set(schedule(["p1"], MODELS[:3], BattleConfig()))
    after = set(schedule(["p1"], MODELS, BattleConfig()))
    assert before < after
    assert all("m4" in (a, b) for _, a, b in after - before)


def test_target_and_anchor():
    target = schedule(["p"], MODELS, BattleConfig(schedule="target", target="m2"))
    assert sorted((a, b) for _, a, b in target) == [("m1", "m2"), ("m2", "m3"), ("m2", "m4")]
    some = schedule(["p"], MODELS, BattleConfig(schedule="target", target="m2", opponents=("m4",)))
    assert some == [("p", "m2", "m4")]
    anchor = schedule(["p"], MODELS, BattleConfig(schedule="anchor", anchor="m4"))
    assert {b for _, _, b in anchor} == {"m4"} and len(anchor) == 3


def test_sampled_is_seeded_k_per_model_and_stable():
    config = BattleConfig(schedule="sampled", k=1, seed=7)
    ids = [f"p{i}" for i in range(40)]
    battles = schedule(ids, MODELS, config)
    assert battles == schedule(ids, MODELS, config)
    assert battles != schedule(ids, MODELS, BattleConfig(schedule="sampled", k=1, seed=8))
    for p in ids:
        pairs = [(a, b) for q, a, b in battles if q == p]
        # Every model meets at least its k opponents; pairs chosen by two models count once.
        assert all(any(m in pair for pair in pairs) for m in MODELS)
        assert 2 <= len(pairs) <= 4
    assert len({(a, b) for _, a, b in battles}) == 6  # over many prompts, every pair occurs
    target = schedule(ids, MODELS, BattleConfig(schedule="sampled", k=2, target="m1"))
    assert all("m1" in (a, b) for _, a, b in target)
    assert len(target) == 2 * len(ids)


@pytest.mark.parametrize(
    "config, message",
    [
        (BattleConfig(schedule="target", target="gpt-5"), "target 'gpt-5' is not in the roster"),
        (BattleConfig(schedule="anchor", anchor="m9"), "anchor 'm9' is not in the roster"),
        (
            BattleConfig(schedule="target", target="m1", opponents=("m0",)),
            "opponent 'm0' is not in the roster",
        ),
    ],
)
def test_unknown_models_in_a_schedule_are_named(config, message):
    with pytest.raises(UserError, match=message):
        check_schedule(MODELS, config)


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="schedule 'round-robin'"):
        BattleConfig(schedule="round-robin")
    with pytest.raises(UserError, match="combine rule"):
        BattleConfig(combine="majority")
    with pytest.raises(UserError, match="needs --target"):
        BattleConfig(schedule="target")
    with pytest.raises(UserError, match="at least two models"):
        check_schedule(["solo"], BattleConfig())


def _game(a, b, error=None):
    return {"score_a": a, "score_b": b, "winner": game_winner(a, b), "error": error}


def test_game_winner():
    assert game_winner(7, 5) == "model_a"
    assert game_winner(5, 7) == "model_b"
    assert game_winner(6, 6) == "tie"
    assert game_winner(None, 6) is None
    assert game_winner(float("nan"), 6) is None


def test_total_rule_sums_both_games():
    # A position-biased judge: B wins both orders by 2, so totals are equal -> tie.
    biased = combine_pair(_game(6, 8), _game(8, 6), "total")
    assert biased["winner"] == "tie" and biased["consistent"] is False
    clear = combine_pair(_game(9, 4), _game(6, 7), "total")
    assert (clear["winner"], clear["score_a"], clear["score_b"]) == ("model_a", 15, 11)
    assert clear["consistent"] is False


def test_consistent_rule_is_fastchat():
    assert combine_pair(_game(9, 4), _game(6, 7), "consistent")["winner"] == "tie"
    agreed = combine_pair(_game(9, 4), _game(8, 2), "consistent")
    assert agreed["winner"] == "model_a" and agreed["consistent"] is True


@pytest.mark.parametrize("rule", ["total", "consistent"])
def test_a_failed_game_is_never_a_win_or_a_tie(rule):
    pair = combine_pair(_game(9, 1), _game(None, None, "no scores"), rule)
    assert pair["winner"] is None and pair["consistent"] is None
    assert pair["error"] == "game 2: no scores"
