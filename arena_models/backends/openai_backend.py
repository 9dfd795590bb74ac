"""Chat completions over HTTP from any OpenAI-compatible server.

vLLM (`vllm serve`), TGI, SGLang and hosted APIs all speak POST
{endpoint}/chat/completions. Requests run `concurrency` at a time; a 429, a 5xx,
a timeout or a dropped connection is retried with exponential backoff (honouring
Retry-After), and an item that still fails becomes a Generation with `error`
set, so one bad prompt never sinks the batch. The API key is read from the
environment variable the roster names, never from the roster itself.

A constraint goes out as `response_format` json_schema (OpenAI's structured outputs,
which vLLM, SGLang and TGI servers honour) or, for a regex, as vLLM's
`structured_outputs` body field; the legacy `guided_json` is silently ignored by
current vLLM servers, so it is never sent.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from arena_models.backends.base import (
    ChatBackend,
    Constraint,
    Generation,
    Sampling,
    failed,
    with_system_prompt,
)
from core.errors import UserError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 60.0


class OpenAIBackend(ChatBackend):
    """`endpoint`: base URL ending in /v1; `model`: the served model name (default: `name`)."""

    constraint_kinds = ("json", "regex")  # regex: vLLM servers only

    def __init__(
        self,
        endpoint: str,
        name: str,
        model: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 4,
        max_wait: float = 300.0,
        backoff: float = 1.0,
        system_prompt: str | None = None,
        extra_body: dict | None = None,
    ):
        self.endpoint = endpoint.rstrip("/")
        self.name = name
        self.model = model or name
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.max_wait = max_wait
        self.backoff = backoff
        self.system_prompt = system_prompt
        self.extra_body = extra_body or {}
        self.headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise UserError(f"model {name}: environment variable {api_key_env} is not set")
            self.headers["Authorization"] = f"Bearer {key}"
        self._client = None

    def _http(self):
        import httpx

        if self._client is None:
            limits = httpx.Limits(max_connections=self.concurrency)
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.timeout), limits=limits, headers=self.headers
            )
        return self._client

    def generate(
        self,
        conversations: list[list[dict]],
        sampling: Sampling,
        constraint: Constraint | None = None,
    ) -> list[Generation]:
        conversations = with_system_prompt(conversations, self.system_prompt)
        if not conversations:
            return []
        workers = min(self.concurrency, len(conversations))
        unanswered = _Unanswered(limit=workers)
        with ThreadPoolExecutor(workers, thread_name_prefix=f"http-{self.name}") as pool:
            return list(
                pool.map(lambda c: self._one(c, sampling, constraint, unanswered), conversations)
            )

    def _one(
        self,
        messages: list[dict],
        sampling: Sampling,
        constraint: Constraint | None = None,
        unanswered: _Unanswered | None = None,
    ) -> Generation:
        """One request, retried within `max_wait` seconds in all; once a whole wave of
        requests went unanswered (a dead or hung endpoint), the rest fail at once."""
        import httpx

        if unanswered is not None and unanswered.tripped():
            return failed(
                f"{self.name}: not sent: the endpoint answered none of the last"
                f" {unanswered.limit} requests (each tried for up to {self.max_wait:g} s)"
            )
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
            **self.extra_body,
            **_constraint_body(constraint),
        }
        url = f"{self.endpoint}/chat/completions"
        last, answered = "no attempt made", False
        deadline = time.monotonic() + self.max_wait
        for attempt in range(self.retries + 1):
            retry_after, left = None, deadline - time.monotonic()
            try:
                response = self._http().post(url, json=body, timeout=min(self.timeout, left))
            except httpx.TimeoutException:
                last = f"timed out after {round(min(self.timeout, left), 1):g} s"
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            else:
                answered = True
                if response.status_code == 200:
                    if unanswered is not None:
                        unanswered.reset()
                    out = _parse(response)
                    return replace(out, text=self._redact(out.text), error=self._redact(out.error))
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRY_STATUS:
                    break  # a bad request stays bad: no point retrying
                retry_after = _retry_after(response)
            pause = retry_after or self.backoff * 2**attempt * random.uniform(0.5, 1.0)
            if attempt == self.retries or time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
        if unanswered is not None and not answered:
            unanswered.add()
        return failed(self._redact(f"{self.name}: {last} (after {attempt + 1} attempts)"))

    def _redact(self, text: str | None) -> str | None:
        """`text` without the API key or any 8 characters of it: a server may echo the
        key (or its start) in a 401 body, and errors go to Parquet and reports."""
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not text or not key:
            return text
        return redact(text, key)

    def __getstate__(self) -> dict:
        # Sent to Dask workers: the HTTP session stays behind and reopens there.
        return {**self.__dict__, "_client": None}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def redact(text: str, secret: str, run: int = 8) -> str:
    """`text` with every stretch of `secret` of `run` or more characters made "***"."""
    hidden = [False] * len(text)
    for i in range(max(len(secret) - run, 0) + 1):
        piece = secret[i : i + run]
        at = text.find(piece)
        while at != -1:
            hidden[at : at + len(piece)] = [True] * len(piece)
            at = text.find(piece, at + 1)
    out, k = [], 0
    while k < len(text):
        if hidden[k]:
            out.append("***")
            while k < len(text) and hidden[k]:
                k += 1
        else:
            out.append(text[k])
            k += 1
    return "".join(out)


def _constraint_body(constraint: Constraint | None) -> dict:
    if constraint is None:
        return {}
    if constraint.kind == "json":
        schema = {"name": "reply", "schema": json.loads(constraint.pattern), "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    return {"structured_outputs": {"regex": constraint.pattern}}


def _parse(response) -> Generation:
    try:
        data = response.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Generation(
            (choice["message"].get("content") or "").strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
        )
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return failed(f"unreadable response ({type(err).__name__}): {response.text[:300]}")


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class _Unanswered:
    """Requests in a row that got no reply at all (timeouts, refused connections), shared
    by one call's threads; `limit` of them trip it."""

    def __init__(self, limit: int):
        self.limit, self.count, self.lock = limit, 0, threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.count += 1

    def reset(self) -> None:
        with self.lock:
            self.count = 0

    def tripped(self) -> bool:
        return self.count >= self.limit
