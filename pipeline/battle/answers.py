"""The answer task: one model, a chunk of prompts -> its answers, appended to the cache.

Runs on a worker. The backend is made from the roster entry there (engines and
weights load once per worker process and stay for the model's next chunk).
Multi-turn prompts are answered turn by turn, each answer conditioned on the
model's own earlier ones. An answer that failed is reported, not cached, so a
later run asks again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

from arena_models.cache import ANSWER, AnswerCache
from arena_models.multiturn import answer_turn_by_turn
from arena_models.roster import make_backend
from pipeline.battle.prompts import read_prompts


def answer_chunk(spec, prompt_ids: list[str], prompts_path: str, cache_root: str) -> dict:
    """`spec`: a roster ModelSpec. Returns counts, tokens, seconds and failures
    [(prompt_id, error)] of this chunk."""
    started = time.perf_counter()
    prompts = read_prompts(prompts_path, prompt_ids)
    conversations = [prompts[p] for p in prompt_ids]
    backend = make_backend(spec)
    generations = answer_turn_by_turn(backend, conversations, spec.sampling)
    rows, failures = [], []
    for pid, turns in zip(prompt_ids, generations):
        error = next((g.error for g in turns if g.error), None)
        if error or not turns:
            failures.append((pid, error or "no user turn to answer"))
            continue
        rows.append(
            {
                "model": spec.name,
                "prompt_id": pid,
                "sampling_key": spec.fingerprint(),
                "answers": [g.text for g in turns],
                "finish_reasons": [g.finish_reason for g in turns],
                "prompt_tokens": sum(g.prompt_tokens for g in turns),
                "completion_tokens": sum(g.completion_tokens for g in turns),
            }
        )
    AnswerCache(Path(cache_root)).model(spec.name).append(pa.Table.from_pylist(rows, ANSWER))
    return {
        "model": spec.name,
        "asked": len(prompt_ids),
        "answered": len(rows),
        "failures": failures,
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "seconds": time.perf_counter() - started,
    }
