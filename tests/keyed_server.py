"""A careless OpenAI-compatible server that needs an API key, for the tests that no key is
ever written or printed (tests/test_security.py, tests/jobs/test_security_cli.py)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading

KEY = "sk-arena-7Q3zX9vLw2Rt8Kp4Nd6Hs1Bf"  # distinctive: never a substring of anything else
ENV = "ARENA_TEST_SECRET_KEY"
LEAK = "LEAK-401"  # a prompt holding this gets a 401 whose body echoes the key


class Server:
    """What the fake OpenAI-compatible server saw."""

    def __init__(self):
        self.authorized = 0
        self.refused = 0


@contextlib.contextmanager
def serving_with_key():
    """An OpenAI-compatible server on loopback that needs `Authorization: Bearer KEY`; yields
    (its base URL, the Server counting what it saw). A refusal (or a prompt holding LEAK) is
    a careless 401 that echoes the key and its first 8 characters."""
    seen = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization", "")
            text = body["messages"][-1]["content"]
            if auth != f"Bearer {KEY}" or LEAK in text:
                seen.refused += 1
                shown = auth.removeprefix("Bearer ")
                status, payload = 401, {"error": f"bad key {auth}; provided: {shown[:8]}****"}
            else:
                seen.authorized += 1
                status = 200
                if "[Start of Answer A]" in text:  # a judge request
                    verdict = {"score_a": 7, "score_b": 4, "explanation": "A is more complete."}
                    reply = (
                        json.dumps(verdict)
                        if "response_format" in body
                        else ("Score A: 7/10\nScore B: 4/10\nExplanation: A is more complete.")
                    )
                else:
                    reply = "A short hosted answer."
                payload = {
                    "choices": [{"message": {"content": reply}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 5},
                }
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def absent(text: str, where: str) -> None:
    """Neither the key nor its first 8 characters are in `text` (found in `where`)."""
    assert KEY not in text, f"the API key is in {where}"
    assert KEY[:8] not in text, f"the API key's first 8 characters are in {where}"
