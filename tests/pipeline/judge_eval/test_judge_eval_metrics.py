"""Judge-eval metrics on small hand-made tables; every expected figure is counted by
hand in the comment beside it."""

import pytest

from pipeline.judge_eval.metrics import Game, judged_row, pair_verdict, people_row, verdict_row
from pipeline.judge_eval.pairs import human_label, longer_side

# Six pairs. Games in x / y terms (game 2 showed y first; scores already mapped back).
GAMES = [
    (Game(8, 5), Game(7, 6)),  # p1: x, x            total x 15-11       consistent
    (Game(7, 5), Game(4, 8)),  # p2: x, y            total y 11-13       inconsistent
    (Game(5, 5), Game(5, 5)),  # p3: tie, tie        total tie 10-10     consistent
    (Game(9, 3), Game(None, None, "no scores")),  # p4: a game failed: no verdict
    (Game(6, 8), Game(6, 7)),  # p5: y, y            total y 12-15       consistent
    (Game(8, 4), Game(3, 6)),  # p6: x, y            total x 11-10       inconsistent
]
HUMANS = ["x", "y", "tie", "x", "y", "tie"]
LONGER = ["x", "x", "y", None, "y", "x"]


def test_human_label_is_the_strict_plurality_else_a_tie():
    assert human_label({"x": 3, "y": 0, "tie": 2}) == "x"
    assert human_label({"x": 0, "y": 1}) == "y"  # a label left out counts 0
    assert human_label({"x": 2, "y": 2, "tie": 1}) == "tie"  # x and y split evenly
    assert human_label({"x": 2, "y": 0, "tie": 2}) == "tie"  # x level with tie
    assert human_label({"x": 0, "y": 2, "tie": 3}) == "tie"  # tie has the most votes
    assert longer_side("abc", "ab") == "x" and longer_side("a", "ab") == "y"
    assert longer_side("ab", "cd") is None


def test_pair_verdicts_by_both_rules():
    total = [pair_verdict(g1, g2, "total") for g1, g2 in GAMES]
    assert total == [
        ("x", True),
        ("y", False),
        ("tie", True),
        (None, None),
        ("y", True),
        ("x", False),
    ]
    consistent = [pair_verdict(g1, g2, "consistent")[0] for g1, g2 in GAMES]
    assert consistent == ["x", "tie", "tie", None, "y", "tie"]


def test_rule_total():
    row = judged_row(GAMES, HUMANS, LONGER, "total")  # verdicts x, y, tie, -, y, x
    assert row["pairs"] == 6 and row["with_verdict"] == 5 and row["no_verdict"] == 1
    # With ties, p1 p2 p3 p5 p6: agree p1 p2 p3 p5; p6 says x, people tie -> 4/5.
    assert row["agreement_with_ties"] == pytest.approx(4 / 5) and row["n_with_ties"] == 5
    # Without ties (p3: both tie, p6: people tie dropped): p1 p2 p5 all agree -> 3/3.
    assert row["agreement_without_ties"] == 1.0 and row["n_without_ties"] == 3
    assert row["tie_rate"] == pytest.approx(1 / 5)  # p3 of five verdicts
    # Non-tie verdicts, unequal lengths: p1 x/x yes, p2 y/x no, p5 y/y yes, p6 x/x yes.
    assert row["longer_wins"] == pytest.approx(3 / 4) and row["n_longer"] == 4
    # Both games parsed: p1 p2 p3 p5 p6; same winner in p1 p3 (tie, tie) p5 -> 3/5.
    assert row["consistency"] == pytest.approx(3 / 5) and row["n_consistency"] == 5
    assert row["games"] == 12 and row["parse_errors"] == 1  # p4's game 2
    assert row["parse_error_rate"] == pytest.approx(1 / 12)


def test_rule_consistent():
    row = judged_row(GAMES, HUMANS, LONGER, "consistent")  # x, tie, tie, -, y, tie
    # With ties: p1 yes, p2 tie/y no, p3 yes, p5 yes, p6 tie/tie yes -> 4/5.
    assert row["agreement_with_ties"] == pytest.approx(4 / 5) and row["n_with_ties"] == 5
    # Without ties: only p1 and p5 are decided on both sides, both agree -> 2/2.
    assert row["agreement_without_ties"] == 1.0 and row["n_without_ties"] == 2
    assert row["tie_rate"] == pytest.approx(3 / 5)  # p2 p3 p6
    assert row["longer_wins"] == 1.0 and row["n_longer"] == 2  # p1 x/x, p5 y/y
    assert row["consistency"] == pytest.approx(3 / 5)  # the games do not depend on the rule


def test_recorded_and_people_rows():
    # A recorded judge: p1 y (people x), p2 y, p3 x (people tie), p4 missing, p5 tie, p6 x.
    row = verdict_row(["y", "y", "x", None, "tie", "x"], HUMANS, LONGER)
    assert row["no_verdict"] == 1 and row["n_with_ties"] == 5
    assert row["agreement_with_ties"] == pytest.approx(1 / 5)  # only p2
    # Without ties: p1 (no), p2 (yes); p3 p6 people tie, p5 judge tie -> 1/2.
    assert row["agreement_without_ties"] == 0.5 and row["n_without_ties"] == 2
    # Longer: p1 y/x no, p2 y/x no, p3 x/y no, p6 x/x yes -> 1/4.
    assert row["longer_wins"] == pytest.approx(1 / 4) and row["n_longer"] == 4
    assert row["consistency"] is None and row["parse_errors"] is None  # no games
    people = people_row(HUMANS, LONGER)
    assert people["agreement_with_ties"] is None and people["agreement_without_ties"] is None
    assert people["tie_rate"] == pytest.approx(2 / 6)  # p3 p6
    # Non-tie labels of unequal length: p1 x/x yes, p2 y/x no, p5 y/y yes (p4: equal).
    assert people["longer_wins"] == pytest.approx(2 / 3) and people["n_longer"] == 3


def test_nothing_to_count_is_none_not_zero():
    row = judged_row([(Game(None, None, "e"), Game(None, None, "e"))], ["x"], ["x"], "total")
    assert row["agreement_with_ties"] is None and row["n_with_ties"] == 0
    assert row["consistency"] is None and row["parse_error_rate"] == 1.0
