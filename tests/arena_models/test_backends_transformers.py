"""Transformers backend on real SmolLM2-135M-Instruct: batching, sampling, errors, templates."""

import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.transformers_backend import TransformersBackend

QUESTIONS = [
    "What is the capital of France?",
    "Write one sentence about the sea, please, in the style of a sailor who has seen it all.",
    "Name a prime number.",
]


def chats(questions):
    return [[{"role": "user", "content": q}] for q in questions]


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fp32():
    return TransformersBackend("builtin:smollm2-135m-instruct", dtype="float32", batch_size=2)


def test_batched_greedy_matches_one_by_one_and_keeps_order(fp32):
    greedy = Sampling(temperature=0.0, max_tokens=12)
    batched = fp32.generate(chats(QUESTIONS), greedy)
    alone = [fp32.generate(chats([q]), greedy)[0] for q in QUESTIONS]
    assert [g.text for g in batched] == [g.text for g in alone]
    for g in batched:
        assert g.error is None and g.text
        assert g.prompt_tokens > 10 and 0 < g.completion_tokens <= 12
        assert g.finish_reason in ("stop", "length")
    assert "paris" in batched[0].text.lower()


def test_sampling_is_reproducible_by_seed():
    backend = TransformersBackend("builtin:smollm2-135m-instruct", batch_size=4)  # dtype auto
    convs = chats(["Tell me a story about a dragon."] * 2)
    first = backend.generate(convs, Sampling(temperature=1.0, max_tokens=16, seed=7))
    again = backend.generate(convs, Sampling(temperature=1.0, max_tokens=16, seed=7))
    other = backend.generate(convs, Sampling(temperature=1.0, max_tokens=16, seed=8))
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]


def test_too_long_prompt_is_a_per_item_error(fp32):
    short = TransformersBackend("builtin:smollm2-135m-instruct", dtype="float32", max_model_len=60)
    out = short.generate(chats(["Hi!", "word " * 200]), Sampling(max_tokens=4))
    assert out[0].error is None and out[0].completion_tokens > 0
    assert out[1].text == "" and "tokens" in out[1].error


def test_system_prompt_and_chat_template_override(fp32):
    pirate = TransformersBackend(
        "builtin:smollm2-135m-instruct", dtype="float32", system_prompt="You are a pirate."
    )
    rendered = pirate.render(chats(["Hello"]))[0]
    assert "You are a pirate." in rendered and "named SmolLM" not in rendered
    plain = TransformersBackend(
        "builtin:smollm2-135m-instruct",
        dtype="float32",
        chat_template="{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}",
    )
    assert plain.render(chats(["Hello"]))[0] == "user: Hello\nassistant:"
