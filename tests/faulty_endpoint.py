"""A faulty OpenAI-compatible endpoint for battle tests: a real HTTP server on loopback that
answers every model and the judge, and is scripted (seeded, by request content) to fail
20% of requests with 500 and stall 10% past the client's timeout (mode "flaky"), to
give the judge's replies that are no verdicts ("garbage") or to refuse the judge
("judge-down"). Used by tests/pipeline/battle/test_battle_faults.py (the flow) and
tests/jobs/test_battle_faults_cli.py (`arena battle` and `arena judge-eval`)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "eval_sets" / "samples" / "arena_hard_v0.1.jsonl"
SEED = 7
TIMEOUT_S = 0.5  # the roster's client timeout; a stall outlasts it
STALL_S = 1.5
MAX_FAULTS_IN_A_ROW = 3  # below the roster's 4 retries, so the test is bounded by design


class Endpoint:
    """One OpenAI-compatible server for every roster entry; `mode` is healthy, flaky,
    garbage (the judge's replies are not verdicts) or judge-down (the judge's requests get
    500). Replies depend on the request's model and messages only, so healthy and flaky
    runs must give the same outputs."""

    def __init__(self):
        self.mode = "healthy"
        self.lock = threading.Lock()
        self.seen: Counter = Counter()  # request content -> times asked
        self.streak: Counter = Counter()  # request content -> faults in a row
        self.injected: Counter = Counter()  # "500" / "stall" / "200"

    def fault(self, key: str) -> str | None:
        with self.lock:
            self.seen[key] += 1
            if self.mode != "flaky" or self.streak[key] >= MAX_FAULTS_IN_A_ROW:
                self.streak[key] = 0
                return None
            draw = random.Random(f"{SEED}:{key}:{self.seen[key]}").random()
            fault = "500" if draw < 0.2 else "stall" if draw < 0.3 else None
            self.streak[key] = self.streak[key] + 1 if fault else 0
            self.injected[fault or "200"] += 1
            return fault

    def reply(self, body: dict, key: str) -> str:
        digest = hashlib.sha256(key.encode()).digest()
        if "response_format" not in body:  # a model's answer
            return f"{body['model']} answers {digest.hex()[:12]}"
        if self.mode == "garbage":
            return "Both answers have merit; I cannot choose."
        verdict = {"score_a": 1 + digest[0] % 10, "score_b": 1 + digest[1] % 10}
        return json.dumps({**verdict, "explanation": "scored by the test server"})


@contextlib.contextmanager
def serving():
    """An Endpoint on loopback: yields (its base URL, the Endpoint whose mode a test sets)."""
    state = Endpoint()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = json.dumps([body["model"], body["messages"]], sort_keys=True)
            fault = state.fault(key)
            if state.mode == "judge-down" and "response_format" in body:
                fault = "500"
            if fault == "stall":
                time.sleep(STALL_S)
            status = 500 if fault == "500" else 200
            payload = {
                "choices": [
                    {"message": {"content": state.reply(body, key)}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3},
            }
            data = json.dumps(payload if status == 200 else {"error": "injected"}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()


def write_arena(root: Path, url: str) -> Path:
    """Six Arena-Hard prompts as an eval set in `root`, and rosters of three models and a
    judge, all served by the endpoint at `url`; returns `root`."""
    rows = []
    for line, text in enumerate(SAMPLES.read_text().splitlines()[:6]):
        messages = [{"role": "user", "content": json.loads(text)["prompt"]}]
        rows.append(
            {
                "prompt_id": prompt_id(messages),
                "messages": messages,
                "source": "ah",
                "source_id": None,
                "source_file": "ah",
                "source_line": line,
                "metadata": "{}",
            }
        )
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), root / "evalset" / "part-0.parquet"
    )
    entry = f"backend: openai, endpoint: '{url}', timeout: {TIMEOUT_S}, retries: 4, concurrency: 4"
    (root / "roster.yaml").write_text(
        "defaults:\n  sampling: {max_tokens: 16}\nmodels:\n"
        + "".join(f"  - {{name: {m}, model: {m}, {entry}}}\n" for m in ("alpha", "beta", "gamma"))
    )
    (root / "judges.yaml").write_text(f"models:\n  - {{name: judge, model: judge, {entry}}}\n")
    return root
