"""Difficulty scores: parsing, retries and the probability-weighted judge with real SmolLM2."""

import pytest

from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.difficulty import DifficultyScorer, parse_difficulty


@pytest.mark.parametrize(
    "reply, score",
    [
        ("Difficulty: 7", 7.0),
        ("difficulty is 3/10.", 3.0),
        ("Difficulty = 10", 10.0),
        ("8", 8.0),
        ("Difficulty: 12", None),
        ("I think it is hard.", None),
        ("", None),
    ],
)
def test_parse(reply, score):
    assert parse_difficulty(reply) == score


@pytest.fixture(scope="module")
def smollm2():
    return TransformersBackend("builtin:smollm2-135m-instruct", batch_size=4)


@pytest.mark.slow
def test_expected_scores_from_real_judge(smollm2):
    scorer = DifficultyScorer(smollm2, mode="expected")
    results = scorer.score(
        ["Hi!", "Prove Fermat's last theorem for n = 3, then formalise it in Lean."]
    )
    for r in results:
        assert r.error is None and 0 <= r.score <= 10
        assert r.raw.startswith("0:")  # the judge's probability of every score is kept


@pytest.mark.slow
def test_generated_scores_retry_then_error_never_invent(smollm2, tmp_path):
    # A template that asks for no score at all: every reply must end as an error.
    template = tmp_path / "no_score.txt"
    template.write_text("Repeat this text back, word for word: {instruction}")
    scorer = DifficultyScorer(smollm2, template=template, retries=1, max_tokens=8, mode="generate")
    results = scorer.score(["The cat sat on the mat.", "Blue skies."])
    assert all(r.score is None and r.attempts == 2 and r.error for r in results)
