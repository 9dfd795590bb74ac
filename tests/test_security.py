"""Security: no unsafe loading in our code, no model repo's Python unless the roster asks,
and an API key that lives only in the environment (a real HTTP server that needs the key,
tests/keyed_server.py; the battle whose every output is searched for the key is
tests/jobs/test_security_cli.py)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.openai_backend import OpenAIBackend
from arena_models.backends.transformers_backend import load_kwargs
from arena_models.backends.vllm_backend import engine_kwargs
from arena_models.roster import load_roster, make_backend
from core.errors import UserError
from tests.keyed_server import ENV, KEY, LEAK, absent, serving_with_key

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("pipeline", "arena_models", "core", "jobs", "bench")


# --- unsafe loading: pickle, eval, unsafe YAML, shells ------------------------------------

FORBIDDEN_CALLS = {
    "pickle.load": "pickle runs code from the file",
    "pickle.loads": "pickle runs code from the data",
    "pickle.Unpickler": "pickle runs code from the file",
    "_pickle.load": "pickle runs code from the file",
    "_pickle.loads": "pickle runs code from the data",
    "pandas.read_pickle": "a pickle",
    "joblib.load": "a pickle",
    "shelve.open": "a pickle store",
    "yaml.unsafe_load": "YAML that builds objects",
    "yaml.full_load": "YAML that builds objects",
    "yaml.load_all": "use yaml.safe_load_all",
    "os.system": "a shell",
    "os.popen": "a shell",
    "eval": "eval runs text as code",
    "exec": "exec runs text as code",
    "builtins.eval": "eval runs text as code",
    "builtins.exec": "exec runs text as code",
}
FORBIDDEN_MODULES = ("dill", "marshal", "cloudpickle", "shelve", "joblib")
# Loaders that may run a model repository's own Python: trust_remote_code must be explicit.
REMOTE_CODE_LOADERS = ("from_pretrained", "SentenceTransformer", "LLM", "distill")
# model2vec reads safetensors and JSON only: no code to trust.
NO_REMOTE_CODE = ("model2vec.StaticModel.from_pretrained",)


def _dotted(node, aliases: dict[str, str]) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Each unsafe load, eval or shell call in `source`, as "file:line: what (why)"."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
                if a.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {a.name} (unsafe deserialiser)")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} (unsafe deserialiser)")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        where = f"{filename}:{node.lineno}: {name}"
        if name in FORBIDDEN_CALLS:
            found.append(f"{where} ({FORBIDDEN_CALLS[name]})")
        elif name == "yaml.load":
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if _dotted(loader, aliases) not in ("yaml.SafeLoader", "yaml.CSafeLoader"):
                found.append(f"{where} without SafeLoader")
        elif name == "torch.load" and not _true(_keyword(node, "weights_only")):
            found.append(f"{where} without weights_only=True")
        elif name == "numpy.load" and _true(_keyword(node, "allow_pickle")):
            found.append(f"{where} with allow_pickle=True")
        elif name.startswith(("subprocess.", "asyncio.create_subprocess_shell")):
            if _true(_keyword(node, "shell")) or name.endswith("_shell"):
                found.append(f"{where} with shell=True")
        elif name.split(".")[-1] in REMOTE_CODE_LOADERS and name not in NO_REMOTE_CODE:
            splat = any(kw.arg is None for kw in node.keywords)  # **kwargs built to say it
            if _keyword(node, "trust_remote_code") is None and not splat:
                found.append(f"{where} without an explicit trust_remote_code")
    return found


def test_the_scanner_catches_what_it_looks_for():
    bad = (
        "import pickle, yaml, torch\nimport numpy as np\nimport pandas as pd\nimport subprocess\n"
        "import dill\nfrom transformers import AutoModel\n"
        "pickle.load(f)\nyaml.load(t)\ntorch.load(p)\nnp.load(p, allow_pickle=True)\n"
        "pd.read_pickle(p)\neval(s)\nexec(s)\nsubprocess.run(c, shell=True)\n"
        "AutoModel.from_pretrained(p)\n"
    )
    flagged = {int(f.split(":")[1]) for f in unsafe_calls(bad)}
    assert flagged == {5, *range(7, 16)}  # the dill import and every call
    good = (
        "import yaml, torch\nimport numpy as np\nimport subprocess\n"
        "from transformers import AutoModel\n"
        "yaml.safe_load(t)\nyaml.load(t, Loader=yaml.SafeLoader)\n"
        "torch.load(p, weights_only=True)\nnp.load(p)\nmodel.eval()\nsubprocess.run([c])\n"
        "AutoModel.from_pretrained(p, trust_remote_code=False)\nLLM(**kwargs)\n"
    )
    assert unsafe_calls(good) == []


def test_no_unsafe_loading_in_our_code():
    found = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            found += unsafe_calls(path.read_text(), str(path.relative_to(REPO)))
    assert not found, "\n".join(found)


# --- trust_remote_code ---------------------------------------------------------------------


def test_local_models_run_no_repo_code_unless_the_roster_says_so(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    entries = [
        f"{{name: {name}, backend: {backend}, path: '{folder}', dtype: float32{extra}}}"
        for backend in ("vllm", "transformers")
        for name, extra in (
            (f"{backend}-plain", ""),
            (f"{backend}-trusted", ", trust_remote_code: true"),
        )
    ]
    (tmp_path / "r.yaml").write_text("models:\n" + "".join(f"  - {e}\n" for e in entries))
    vllm_plain, vllm_trusted, hf_plain, hf_trusted = map(
        make_backend, load_roster(tmp_path / "r.yaml")
    )
    # The engine and from_pretrained keywords the backends build, without loading a model.
    assert engine_kwargs(vllm_plain._key())["trust_remote_code"] is False
    assert engine_kwargs(vllm_trusted._key())["trust_remote_code"] is True
    assert vllm_plain._key() != vllm_trusted._key()  # never the same cached engine
    for backend, expected in ((hf_plain, False), (hf_trusted, True)):
        tokenizer_kwargs, model_kwargs = load_kwargs("float32", backend.trust_remote_code)
        assert tokenizer_kwargs["trust_remote_code"] is expected
        assert model_kwargs["trust_remote_code"] is expected
    (tmp_path / "bad.yaml").write_text(
        f"models:\n  - {{name: m, backend: vllm, path: '{folder}', trust_remote_code: 'yes'}}\n"
    )
    with pytest.raises(UserError, match="trust_remote_code must be bool"):
        load_roster(tmp_path / "bad.yaml")


# --- API keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "roster, message",
    [
        (
            "models:\n  - {name: m, backend: openai, endpoint: 'http://h/v1', api_key: %s}\n",
            "model m: api_key is not accepted in a roster; put the key in an environment "
            "variable and name it with api_key_env",
        ),
        (
            "defaults: {api_key: %s}\nmodels:\n  - {name: m, backend: openai, endpoint: 'http://h/v1'}\n",
            "defaults: api_key is not accepted",
        ),
        (
            "models:\n  - {name: m, backend: openai, endpoint: 'http://h/v1', api_key_env: %s}\n",
            "api_key_env must name an environment variable",
        ),
        (
            "models:\n  - {name: m, backend: openai, endpoint: 'http://u:%s@h/v1'}\n",
            "endpoint must not carry credentials",
        ),
        (
            "models:\n  - {name: m, backend: openai, endpoint: 'http://h/v1?key=%s'}\n",
            "endpoint must not carry credentials",
        ),
    ],
)
def test_a_roster_cannot_carry_a_key(tmp_path, roster, message):
    (tmp_path / "r.yaml").write_text(roster % KEY)
    with pytest.raises(UserError, match=message) as err:
        load_roster(tmp_path / "r.yaml")
    assert KEY[:8] not in str(err.value) and len(str(err.value).splitlines()) == 1


@pytest.fixture
def keyed_server():
    with serving_with_key() as served:
        yield served


def test_errors_and_logs_never_hold_the_key(keyed_server, monkeypatch, caplog):
    url, seen = keyed_server
    caplog.set_level(logging.DEBUG)  # httpx and httpcore at their most talkative
    monkeypatch.setenv(ENV, KEY)
    backend = OpenAIBackend(url, name="m", api_key_env=ENV, retries=0)
    good, leak = backend.generate(
        [[{"role": "user", "content": "hi"}], [{"role": "user", "content": LEAK}]], Sampling()
    )
    assert good.text == "A short hosted answer." and seen.authorized == 1
    assert "HTTP 401" in leak.error and "***" in leak.error
    absent(leak.error, "the 401 error")
    monkeypatch.setenv(ENV, KEY[::-1])  # a wrong key is a secret too
    wrong = OpenAIBackend(url, name="m", api_key_env=ENV, retries=0).generate(
        [[{"role": "user", "content": "hi"}]], Sampling()
    )[0]
    assert "HTTP 401" in wrong.error and KEY[::-1][:8] not in wrong.error
    absent(caplog.text, "the log")
    assert "Authorization" not in caplog.text


def test_an_exception_from_a_worker_does_not_hold_the_key(client, keyed_server, monkeypatch):
    url, _ = keyed_server
    monkeypatch.setenv(ENV, KEY)
    backend = OpenAIBackend(url, name="m", api_key_env=ENV, retries=0)

    def fail_loudly(backend):
        out = backend.generate([[{"role": "user", "content": LEAK}]], Sampling())[0]
        raise RuntimeError(f"answering failed: {out.error}")

    with pytest.raises(RuntimeError, match="HTTP 401") as err:
        client.submit(fail_loudly, backend, pure=False).result()
    import traceback

    absent("".join(traceback.format_exception(err.value)), "the worker's exception")
