"""Turn-by-turn answering of MT-bench questions with real SmolLM2."""

import json

import pytest

from arena_models.backends.base import ChatBackend, Sampling
from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.multiturn import answer_turn_by_turn, pending_turns


class Recording(ChatBackend):
    """Passes every call to a real backend and keeps the conversations it was given."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []

    def generate(self, conversations, sampling):
        self.calls.append(conversations)
        return self.inner.generate(conversations, sampling)


def test_pending_turns():
    u = {"role": "user", "content": "q"}
    a = {"role": "assistant", "content": "a"}
    s = {"role": "system", "content": "s"}
    assert pending_turns([s, u, u]) == [1, 2]
    assert pending_turns([u, a, u]) == [2]
    assert pending_turns([u, a]) == []


@pytest.mark.slow
def test_mt_bench_turns_conditioned_on_own_answers(shared_data):
    rows = [
        json.loads(line)
        for line in (shared_data / "prompts" / "mt_bench.jsonl").read_text().splitlines()[:3]
    ]
    conversations = [[{"role": "user", "content": t} for t in r["turns"]] for r in rows]
    conversations[2] = conversations[2][:1]  # a one-turn prompt among two-turn ones
    backend = Recording(TransformersBackend("builtin:smollm2-135m-instruct", batch_size=4))
    answers = answer_turn_by_turn(backend, conversations, Sampling(max_tokens=24))
    assert [len(a) for a in answers] == [2, 2, 1]
    assert all(g.error is None and g.text for a in answers for g in a)
    first, second = backend.calls  # one batched call per turn across conversations
    assert len(first) == 3 and len(second) == 2
    for c in range(2):
        assert second[c] == [
            conversations[c][0],
            {"role": "assistant", "content": answers[c][0].text},
            conversations[c][1],
        ]
