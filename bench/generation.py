"""Generation throughput: the vLLM backend against the best batched transformers generate.

Run: .venv/bin/python -m bench.generation [--threads 1] [--plain 32] [--judge 8]
     [--workloads plain,judge] [--kv-cache-gib 1]
Same model (SmolLM2-135M-Instruct, bfloat16), same prompts, same process and
thread count. Two workloads:
- plain: real prompts (Arena-Hard v0.1, MT-bench first turns) answered with up to
  --plain-tokens tokens;
- judge: pairwise judge prompts, long and sharing a prefix: a long judge
  template plus the instruction, with real recorded answers of three models
  (GPT-4-0314, GPT-4-0613, GPT-3.5-turbo) in every pair and both orders, as a
  battle round judges them. vLLM runs with prefix caching on and off.
The transformers baseline is the TransformersBackend (length-sorted, left-padded
batches) at its best batch size of --batch-sizes. Engines and models load, and
are warmed up, outside the timed part. Prints tokens/s and the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL = "builtin:smollm2-135m-instruct"
ANSWER_MODELS = ("gpt-4-0314", "gpt-4-0613", "gpt-3.5-turbo-0125")
# An Arena-Hard style judge system prompt: long and the same for every battle.
JUDGE_RULES = """Please act as an impartial judge and evaluate the quality of the responses provided by
two AI assistants to the user prompt displayed below. You will be given assistant A's answer and
assistant B's answer. Your job is to evaluate which assistant's answer is better.

Begin your evaluation by generating your own answer to the prompt. You must provide your answers
before judging any answers. When evaluating the assistants' answers, compare both assistants'
answers with your answer. You must identify and correct any mistakes or inaccurate information.

Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the
answer correctly responds to the prompt or follows the instructions. Note when user prompt has any
ambiguity or more than one interpretation, it is more helpful and appropriate to ask for
clarifications or more information from the user than providing an answer based on assumptions.
Relevant means all parts of the response closely connect or are appropriate to what is being
asked. Concise means the response is clear and not verbose or excessive.

Then consider the creativity and novelty of the assistant's answers when needed. Finally, identify
any missing important information in the assistants' answers that would be beneficial to include
when responding to the user prompt. Avoid any position biases and ensure that the order in which
the responses were presented does not influence your decision. Do not allow the length of the
responses to influence your evaluation. Do not favor certain names of the assistants.

After providing your explanation, you must output only one of the following choices as your final
verdict with a label:
1. Assistant A is significantly better: [[A>>B]]
2. Assistant A is slightly better: [[A>B]]
3. Tie, relatively the same: [[A=B]]
4. Assistant B is slightly better: [[B>A]]
5. Assistant B is significantly better: [[B>>A]]
Example output: "My final verdict is tie: [[A=B]]"."""


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plain_workload(count: int) -> list[list[dict]]:
    hard = [r["prompt"] for r in read_jsonl(DATA / "prompts" / "arena_hard_v0.1.jsonl")]
    mt = [r["turns"][0] for r in read_jsonl(DATA / "prompts" / "mt_bench.jsonl")]
    texts = [t for pair in zip(mt, hard) for t in pair][:count]
    return [[{"role": "user", "content": t}] for t in texts]


def judge_workload(instructions: int, answer_chars: int) -> list[list[dict]]:
    """6 judge prompts per instruction (3 model pairs x 2 orders), sharing rules + instruction."""
    answers: dict[str, dict[str, str]] = {}
    for model in ANSWER_MODELS:
        for row in read_jsonl(DATA / "answers" / "arena-hard-v0.1" / f"{model}.jsonl"):
            content = row["messages"][1]["content"]
            text = content["answer"] if isinstance(content, dict) else content
            answers.setdefault(row["uid"], {})[model] = text[:answer_chars]
    questions = read_jsonl(DATA / "prompts" / "arena_hard_v0.1.jsonl")[:instructions]
    prompts = []
    for q in questions:
        for a, b in itertools.permutations(ANSWER_MODELS, 2):
            user = (
                f"<|User Prompt|>\n{q['prompt']}\n\n<|The Start of Assistant A's Answer|>\n"
                f"{answers[q['uid']][a]}\n<|The End of Assistant A's Answer|>\n\n"
                f"<|The Start of Assistant B's Answer|>\n{answers[q['uid']][b]}\n"
                "<|The End of Assistant B's Answer|>"
            )
            prompts.append(
                [{"role": "system", "content": JUDGE_RULES}, {"role": "user", "content": user}]
            )
    return prompts


def timed(backend, conversations, sampling) -> dict:
    start = time.perf_counter()
    out = backend.generate(conversations, sampling)
    seconds = time.perf_counter() - start
    errors = [g.error for g in out if g.error]
    if errors:
        raise SystemExit(f"{backend.name}: {len(errors)} failed, first: {errors[0]}")
    completion = sum(g.completion_tokens for g in out)
    prompt = sum(g.prompt_tokens for g in out)
    return {"s": seconds, "gen": completion, "prompt": prompt, "tok_s": completion / seconds}


def best_transformers(conversations, sampling, batch_sizes: list[int]) -> tuple[int, dict]:
    from arena_models.backends.transformers_backend import TransformersBackend

    runs = {}
    for size in batch_sizes:
        backend = TransformersBackend(MODEL, name=f"transformers b{size}", batch_size=size)
        backend.generate(conversations[:2], sampling)  # load + warm-up, untimed
        runs[size] = timed(backend, conversations, sampling)
        print(f"  transformers batch {size:3d}: {runs[size]['tok_s']:7.1f} tok/s", flush=True)
    size = max(runs, key=lambda s: runs[s]["tok_s"])
    return size, runs[size]


def vllm_run(conversations, sampling, prefix_caching: bool, eager: bool, kv_gib: int) -> dict:
    from arena_models.backends.vllm_backend import VLLMBackend

    backend = VLLMBackend(
        MODEL,
        enable_prefix_caching=prefix_caching,
        enforce_eager=eager,
        max_model_len=4096,
        kv_cache_gib=kv_gib,
    )
    backend.generate(conversations[:2], sampling)  # engine start + compile, untimed
    # The warm-up must not pre-fill the prefix cache with this workload's prompts.
    backend.engine().reset_prefix_cache()
    result = timed(backend, conversations, sampling)
    backend.close()
    return result


def row(label: str, r: dict, base: dict | None) -> str:
    ratio = f"{r['tok_s'] / base['tok_s']:6.2f}x" if base else "  base "
    return (
        f"{label:40s} {r['s']:8.1f} {r['prompt']:9d} {r['gen']:7d} "
        f"{r['tok_s']:8.1f} {(r['prompt'] + r['gen']) / r['s']:9.1f} {ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="OMP threads for both engines")
    parser.add_argument("--plain", type=int, default=32, help="plain prompts")
    parser.add_argument("--plain-tokens", type=int, default=128)
    parser.add_argument("--judge", type=int, default=8, help="instructions (x6 judge prompts)")
    parser.add_argument("--judge-tokens", type=int, default=48)
    parser.add_argument("--answer-chars", type=int, default=1500)
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--eager", action="store_true", help="vLLM without torch.compile")
    parser.add_argument("--kv-cache-gib", type=float, default=1, help="vLLM CPU KV cache (GiB)")
    parser.add_argument("--workloads", default="plain,judge", help="which workloads to run")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from arena_models.backends.base import Sampling

    sizes = [int(s) for s in args.batch_sizes.split(",")]
    mode = "eager" if args.eager else "compiled"
    header = f"{'run':40s} {'seconds':>8s} {'prompt':>9s} {'gen':>7s} {'gen tok/s':>8s} {'all tok/s':>9s} ratio"
    lines = []

    workloads = set(args.workloads.split(","))
    vllm = {"eager": args.eager, "kv_gib": args.kv_cache_gib}
    summary = []
    if "plain" in workloads:
        plain = plain_workload(args.plain)
        sampling = Sampling(temperature=0.0, max_tokens=args.plain_tokens)
        print(f"plain: {len(plain)} prompts, up to {args.plain_tokens} tokens", flush=True)
        size, base = best_transformers(plain, sampling, sizes)
        fast = vllm_run(plain, sampling, prefix_caching=True, **vllm)
        lines += [
            f"plain answers ({len(plain)} prompts, max {args.plain_tokens} tokens)",
            header,
            row(f"transformers bf16, best batch {size}", base, None),
            row(f"vLLM {mode}", fast, base),
            "",
        ]
        summary.append(f"plain: vLLM {fast['tok_s'] / base['tok_s']:.2f}x (target 3x)")

    if "judge" in workloads:
        judge = judge_workload(args.judge, args.answer_chars)
        sampling = Sampling(temperature=0.0, max_tokens=args.judge_tokens)
        print(f"judge: {len(judge)} prompts, up to {args.judge_tokens} tokens", flush=True)
        size, jbase = best_transformers(judge, sampling, sizes)
        cached = vllm_run(judge, sampling, prefix_caching=True, **vllm)
        uncached = vllm_run(judge, sampling, prefix_caching=False, **vllm)
        lines += [
            f"judge workload ({len(judge)} prompts, {jbase['prompt'] // len(judge)} prompt "
            f"tokens on average, max {args.judge_tokens} tokens)",
            header,
            row(f"transformers bf16, best batch {size}", jbase, None),
            row(f"vLLM {mode}, prefix caching on", cached, jbase),
            row(f"vLLM {mode}, prefix caching off", uncached, jbase),
            "",
        ]
        summary.append(
            f"judge: vLLM with prefix caching {cached['tok_s'] / jbase['tok_s']:.2f}x (target "
            f"5x), without {uncached['tok_s'] / jbase['tok_s']:.2f}x; prefix caching alone "
            f"{cached['tok_s'] / uncached['tok_s']:.2f}x"
        )
    lines.append(
        f"OMP threads {args.threads}; vLLM KV cache {args.kv_cache_gib} GiB; "
        "ratios are generated tokens/s against transformers"
    )
    lines.append("; ".join(summary))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
