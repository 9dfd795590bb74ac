"""Roster files: packaged examples load, and every mistake is one clear line."""

import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.openai_backend import OpenAIBackend
from arena_models.backends.recorded_backend import RecordedBackend
from arena_models.backends.transformers_backend import TransformersBackend
from arena_models.backends.vllm_backend import VLLMBackend, engine_kwargs
from arena_models.roster import load_roster, make_backend
from core.errors import UserError


def write(tmp_path, text, name="roster.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_packaged_demo_roster():
    specs = load_roster("demo")
    assert [s.name for s in specs] == [
        "smollm2-greedy",
        "smollm2-concise",
        "gpt-3.5-turbo-0125",
        "gpt-4-0314",
    ]
    greedy, concise, gpt35, gpt4 = specs
    assert greedy.sampling == Sampling(temperature=0.0, max_tokens=256, seed=0)
    assert "concise" in concise.options["system_prompt"]
    assert greedy.resources == {"GPU": 1.0} and gpt35.resources == gpt4.resources == {}
    assert len({s.fingerprint() for s in specs}) == 4
    backends = [make_backend(s) for s in specs]
    assert isinstance(backends[0], VLLMBackend) and backends[0].resources == {"GPU": 1}
    for backend, name in zip(backends[2:], ("gpt-3.5-turbo-0125", "gpt-4-0314")):
        # The packaged answers: one per Arena-Hard v0.1 prompt.
        assert isinstance(backend, RecordedBackend) and backend.name == name
        assert len({k for k in backend._answers() if k.startswith("id:")}) == 500
    # Same engine settings: the two SmolLM2 entries share one vLLM engine per worker,
    # and so do the default judge and the vLLM difficulty judge.
    judges = {s.name: make_backend(s) for s in load_roster("judges")}
    key = backends[0]._key()
    assert key == backends[1]._key()
    assert key == judges["smollm2-judge"]._key() == judges["smollm2-difficulty-vllm"]._key()
    # Half a GiB of KV cache in host memory, passed as bytes (vLLM's env takes whole GiB).
    assert engine_kwargs(key)["kv_cache_memory_bytes"] == 2**29


def test_other_packaged_rosters_load(monkeypatch):
    specs = load_roster("demo_transformers")
    assert isinstance(make_backend(specs[0]), TransformersBackend)
    assert [s.name for s in specs] == [s.name for s in load_roster("demo")]  # the same arena
    endpoints = load_roster("openai_endpoints")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    hosted = make_backend(endpoints[1])
    assert isinstance(hosted, OpenAIBackend)
    assert hosted.headers["Authorization"] == "Bearer sk-test"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UserError, match="OPENAI_API_KEY is not set"):
        make_backend(endpoints[1])


def test_defaults_relative_paths_and_template_file(tmp_path):
    (tmp_path / "answers.jsonl").write_text(
        '{"uid": "1", "messages": [{"role": "user", "content": "Hi"},'
        ' {"role": "assistant", "content": "Hello"}]}\n'
    )
    (tmp_path / "plain.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    path = write(
        tmp_path,
        """
defaults:
  sampling: {max_tokens: 64, seed: 3}
  dtype: float32
models:
  - {name: a, backend: recorded, path: answers.jsonl}
  - name: b
    backend: transformers
    path: builtin:smollm2-135m-instruct
    chat_template: plain.jinja
    sampling: {temperature: 1}
""",
    )
    a, b = load_roster(path)
    assert a.options["path"] == str(tmp_path / "answers.jsonl")
    assert a.sampling == Sampling(max_tokens=64, seed=3)
    assert "dtype" not in a.options  # a default only reaches backends that take it
    assert b.options["dtype"] == "float32" and b.sampling.temperature == 1.0
    assert b.options["chat_template"].startswith("{% for m in messages")
    assert make_backend(a).generate([[{"role": "user", "content": "Hi"}]], a.sampling)[0].text == (
        "Hello"
    )


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            "{name: m, backend: vlm, path: builtin:smollm2-135m-instruct}",
            "model m: backend 'vlm' is not one of transformers, vllm, openai, recorded "
            "(did you mean 'vllm'?)",
        ),
        (
            "{name: m, backend: vllm, path: builtin:smollm2-135m-instruct, max_model_length: 9}",
            "model m: unknown key 'max_model_length' for backend vllm (did you mean 'max_model_len'?)",
        ),
        (
            "{name: m, backend: transformers, path: x, sampling: {temprature: 0.5}}",
            "model m: unknown sampling key 'temprature' (did you mean 'temperature'?)",
        ),
        (
            "{name: m, backend: transformers}",
            "model m: missing path (backend transformers needs it)",
        ),
        ("{backend: transformers, path: x}", "model #1: missing name"),
        ("{name: m, backend: openai}", "model m: missing endpoint"),
        ("{name: m, backend: openai, endpoint: localhost:80}", "is not an http(s) URL"),
        ("{name: m, backend: transformers, path: x, batch_size: many}", "batch_size must be int"),
        ("{name: m, backend: vllm, path: x, enforce_eager: 1}", "enforce_eager must be bool"),
        ("{name: m, backend: transformers, path: x, dtype: fp8}", "dtype 'fp8' is not one of"),
        ("{name: m, backend: transformers, path: builtin:gpt5}", "unknown model builtin:gpt5"),
        ("{name: m, backend: transformers, path: /no/such/model}", "/no/such/model does not exist"),
        ("{name: m, backend: recorded, path: nothing.jsonl}", "model m: path: recorded answers"),
        (
            "{name: m, backend: transformers, path: x, sampling: {top_p: 0}}",
            "sampling needs temperature >= 0, 0 < top_p <= 1",
        ),
        ("{name: m, backend: recorded, path: a.jsonl, endpoint: x}", "unknown key 'endpoint'"),
        (
            "{name: m, backend: vllm, path: x, constraint: grammar}",
            "constraint 'grammar' is not one",
        ),
        (
            "{name: m, backend: openai, endpoint: 'http://h/v1', constraint: xml}",
            "constraint 'xml' is not one of auto, regex, json, none",
        ),
        ("{name: m, backend: vllm, path: x, scoring: vibes}", "scoring 'vibes' is not one of"),
        ("{name: m, backend: openai, endpoint: 'http://h/v1', scoring: expected}", "unknown key"),
        ("{name: m, backend: recorded, path: a.jsonl, constraint: json}", "unknown key"),
    ],
)
def test_mistakes_are_one_line_naming_entry_and_field(tmp_path, entry, message):
    path = write(tmp_path, f"models:\n  - {entry}\n")
    with pytest.raises(UserError) as caught:
        load_roster(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


def test_duplicates_and_file_level_mistakes(tmp_path):
    twice = "  - {name: m, backend: transformers, path: x}\n"
    with pytest.raises(UserError, match="model m: duplicate name"):
        load_roster(write(tmp_path, "models:\n" + twice + twice))
    with pytest.raises(UserError, match="unknown top-level key 'model' .did you mean 'models'"):
        load_roster(write(tmp_path, "model:\n" + twice))
    with pytest.raises(UserError, match="non-empty list"):
        load_roster(write(tmp_path, "models: []\n"))
    with pytest.raises(UserError, match="not valid YAML"):
        load_roster(write(tmp_path, "models: [\n"))
    with pytest.raises(UserError, match="packaged rosters: .*demo"):
        load_roster(tmp_path / "missing.yaml")
    # A bare list is a roster too.
    assert load_roster(write(tmp_path, twice.replace("  - ", "- ")))[0].name == "m"


def test_judging_keys_stay_out_of_the_backend(tmp_path):
    path = write(
        tmp_path,
        "models:\n  - {name: j, backend: transformers, path: builtin:smollm2-135m-instruct,"
        " constraint: json, scoring: expected}\n  - {name: k, backend: vllm, path: x}\n",
    )
    judge, plain = load_roster(path)
    assert (judge.constraint, judge.scoring) == ("json", "expected")
    assert (plain.constraint, plain.scoring) == ("auto", "discrete")
    backend = make_backend(judge)  # the backend takes neither key
    assert backend.constraint_kinds == ("regex", "json")
