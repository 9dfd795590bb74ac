"""vLLM continuation probabilities against the transformers ones, real SmolLM2, float32 both."""

import pytest

from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.backends.vllm_backend import VLLMBackend
from arena_models.difficulty import DifficultyScorer

pytestmark = pytest.mark.slow

MODEL = "builtin:smollm2-135m-instruct"
SCORES = [str(s) for s in range(11)]  # "10" is two tokens: the exact multi-token path
INSTRUCTIONS = [
    "Hi!",
    "Prove Fermat's last theorem for n = 3, then formalise it in Lean.",
    "Write a SQL query for monthly revenue per product from an orders table.",
]


@pytest.fixture(scope="module")
def vllm_backend():
    # The settings of test_backends_vllm.py (eager: a fast start), float32 pinned.
    backend = VLLMBackend(MODEL, dtype="float32", enforce_eager=True, max_model_len=512)
    yield backend
    backend.close()


def test_same_probabilities_as_transformers(vllm_backend):
    transformers = TransformersBackend(MODEL, dtype="float32", batch_size=4)
    conversations = [DifficultyScorer(vllm_backend).prompt(i) for i in INSTRUCTIONS]
    conversations.append(  # a multi-turn chat with a system prompt
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": "How sure are you, 0 to 10? Reply 'Sure: N'."},
        ]
    )
    for prefix in ("Difficulty: ", "Sure: "):
        got, got_mass = vllm_backend.continuation_probabilities(conversations, prefix, SCORES)
        want, want_mass = transformers.continuation_probabilities(conversations, prefix, SCORES)
        for g, w, gm, wm in zip(got, want, got_mass, want_mass, strict=True):
            assert sum(g) == pytest.approx(1.0, abs=1e-6)
            # Measured: |dp| 4e-6, |d mass| 3e-6, |d expected score| 3e-5 (float32 noise).
            assert max(abs(a - b) for a, b in zip(g, w)) < 1e-3
            assert gm == pytest.approx(wm, abs=1e-3)
            expected = [sum(k * p for k, p in enumerate(row)) for row in (g, w)]
            assert abs(expected[0] - expected[1]) < 0.01


def test_overlong_prompt_has_no_mass_and_spares_the_batch(vllm_backend):
    conversations = [[{"role": "user", "content": q}] for q in ("word " * 600, "Rate 0-10: hi")]
    probs, mass = vllm_backend.continuation_probabilities(conversations, "Rating: ", SCORES)
    assert mass[0] == 0.0 and probs[0] == [0.0] * 11
    assert mass[1] > 0 and sum(probs[1]) == pytest.approx(1.0)
