"""Constrained verdicts with the real SmolLM2 on transformers (xgrammar) and vLLM (structured
outputs): every reply is in form, a reply cut off at max_tokens is an error, and the
expected scores come from the judge's own probabilities."""

import json
import re

import pytest

from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.backends.vllm_backend import VLLMBackend
from arena_models.difficulty import DifficultyScorer
from arena_models.judge import JudgeItem, PairwiseJudge, read_verdict
from arena_models.verdicts import VERDICT_REGEX, parse_json_verdict
from core.errors import UserError

pytestmark = pytest.mark.slow

MODEL = "builtin:smollm2-135m-instruct"


def _items(shared_data, n: int) -> list[JudgeItem]:
    """Real answer pairs that people labelled (LLMFAO), both answers clipped for speed."""
    with open(shared_data / "judging" / "llmfao_pairs_dev.jsonl") as f:
        rows = [json.loads(next(f)) for _ in range(n)]
    return [
        JudgeItem.from_dialogue(
            [{"role": "user", "content": r["prompt"]}], [r["answer_x"]], [r["answer_y"]], 600
        )
        for r in rows
    ]


@pytest.fixture(scope="module")
def transformers_judge():
    return TransformersBackend(MODEL, dtype="float32", batch_size=4)


@pytest.fixture(scope="module")
def vllm_judge():
    # The settings of the other vLLM test modules, so one engine serves them all.
    backend = VLLMBackend(MODEL, enforce_eager=True, max_model_len=512)
    yield backend
    backend.close()


@pytest.fixture(params=["transformers", "vllm"])
def backend(request, transformers_judge, vllm_judge):
    return transformers_judge if request.param == "transformers" else vllm_judge


def test_every_constrained_verdict_is_in_form(backend, shared_data):
    judge = PairwiseJudge(backend, retries=0, max_tokens=128, distributions=True)
    verdicts = judge.judge(_items(shared_data, 3))  # 6 games: a full batch of 4, then 2
    for v in verdicts:
        assert v.error is None, v.raw
        assert v.constraint == "regex" and v.finish_reason == "stop" and v.attempts == 1
        assert re.fullmatch(VERDICT_REGEX, v.raw[-1]), v.raw[-1]
        assert read_verdict(v.raw[-1]) == ((v.score_first, v.score_second), None)
        assert v.explanation and "\n" not in v.explanation
        assert 1 <= v.expected_first <= 10 and 1 <= v.expected_second <= 10


def test_a_verdict_cut_off_at_max_tokens_is_an_error(backend, shared_data):
    # 8 tokens reach "Score B" at most: the scores could be read, but the reply is cut.
    judge = PairwiseJudge(backend, retries=1, max_tokens=8, distributions=True)
    for v in judge.judge(_items(shared_data, 2)):
        assert v.error == "verdict cut off at max_tokens (8) (2 attempts)"
        assert v.score_first is None and v.expected_first is None
        assert v.finish_reason == "length" and len(v.raw) == 2


def test_json_constraint_on_transformers(transformers_judge, shared_data):
    judge = PairwiseJudge(transformers_judge, retries=0, constraint="json")
    for v in judge.judge(_items(shared_data, 3)):
        assert v.error is None and v.constraint == "json", v.raw
        assert parse_json_verdict(v.raw[-1])[:2] == (v.score_first, v.score_second)
    with pytest.raises(UserError, match="not JSON"):
        PairwiseJudge(transformers_judge, constraint="json", distributions=True)


def test_free_text_judge_is_still_parsed(transformers_judge, shared_data):
    judge = PairwiseJudge(transformers_judge, retries=0, constraint="none", max_tokens=48)
    for v in judge.judge(_items(shared_data, 2)):
        assert v.constraint == "none"
        assert v.error is None or v.score_first is None


def test_constrained_difficulty_replies_parse(backend):
    scorer = DifficultyScorer(backend, mode="generate", retries=0)
    results = scorer.score(["Hi!", "Prove that there are infinitely many primes.", "Sort a list."])
    assert all(r.error is None and re.fullmatch(r"Difficulty: (10|[0-9])", r.raw) for r in results)
    cut = DifficultyScorer(backend, mode="generate", retries=0, max_tokens=2).score(["Hi!"])
    assert cut[0].score is None and cut[0].error == "reply cut off at max_tokens (2)"
