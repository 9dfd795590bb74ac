"""Engine settings of the demo roster side by side, same run, each in its own fresh
process: `--compare compile` is torch.compile (vLLM's default) against eager mode,
`--compare kv-cache` the host KV cache of 1 GiB against 0.5 GiB (both eager).

    python -m bench.engine_build [--compare compile|kv-cache] [--prompts 32]
        [--max-tokens 256] [--model builtin:smollm2-135m-instruct]

Per setting: seconds to build the engine, seconds and tokens/s to answer `--prompts` real
prompts (greedy, up to `--max-tokens` each), the process's RSS once built and
its peak; then the second setting's ratios to the first. On a CPU the compile dominates
an engine's start, and the main job builds one after every training step; the KV cache
is preallocated, so its size is resident memory of every engine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# Per comparison, (label, VLLMBackend settings); the first is the baseline.
SETTINGS = {
    "compile": (("compiled", {}), ("eager", {"enforce_eager": True})),
    "kv-cache": (
        ("KV 1 GiB", {"enforce_eager": True, "kv_cache_gib": 1.0}),
        ("KV 0.5 GiB", {"enforce_eager": True, "kv_cache_gib": 0.5}),
    ),
}


def measure(label: str, settings: dict, model: str, prompts: int, max_tokens: int) -> dict:
    """In this process: build the engine, answer, return the figures."""
    import random
    import resource
    import time

    import psutil

    from arena_models.backends.base import Sampling
    from arena_models.backends.vllm_backend import VLLMBackend
    from bench.pools import real_prompt_texts

    backend = VLLMBackend(path=model, max_model_len=4096, **settings)
    started = time.perf_counter()
    backend.engine()
    built = time.perf_counter() - started
    rss_built = psutil.Process().memory_info().rss / 2**30
    texts = random.Random(0).sample(real_prompt_texts(), prompts)
    chats = [[{"role": "user", "content": t[:2000]}] for t in texts]
    started = time.perf_counter()
    answers = backend.generate(chats, Sampling(temperature=0.0, max_tokens=max_tokens, seed=0))
    seconds = time.perf_counter() - started
    tokens = sum(a.completion_tokens for a in answers)
    return {
        "setting": label,
        "build_s": round(built, 1),
        "answer_s": round(seconds, 1),
        "tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
        "rss_built_gib": round(rss_built, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--compare", choices=SETTINGS, default="compile")
    parser.add_argument("--setting", type=int, help=argparse.SUPPRESS)  # one child's run
    args = parser.parse_args()
    settings = SETTINGS[args.compare]
    if args.setting is not None:
        label, kwargs = settings[args.setting]
        print(json.dumps(measure(label, kwargs, args.model, args.prompts, args.max_tokens)))
        return
    rows = []
    for index in range(len(settings)):
        child = subprocess.run(
            [sys.executable, "-m", "bench.engine_build", "--compare", args.compare,
             "--setting", str(index), "--prompts", str(args.prompts),
             "--max-tokens", str(args.max_tokens), "--model", args.model],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base, other = rows
    print("| setting | build s | answer s | tokens/s | RSS built GiB | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['build_s']} | {r['answer_s']} | {r['tokens_per_s']} "
            f"| {r['rss_built_gib']} | {r['peak_rss_gib']} |"
        )
    print(
        f"{other['setting']} / {base['setting']}: build {other['build_s'] / base['build_s']:.2f}x, "
        f"tokens/s {other['tokens_per_s'] / base['tokens_per_s']:.2f}x, "
        f"peak RSS {other['peak_rss_gib'] / base['peak_rss_gib']:.2f}x"
    )


if __name__ == "__main__":
    main()
