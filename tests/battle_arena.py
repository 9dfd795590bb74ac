"""A small battle arena on real prompts for the battle tests: an eval set, rosters of the
session's tiny Llama and recorded GPT answers, and judges (tests/pipeline/battle/
test_battle_run.py runs battles on it, tests/jobs/test_battle_cli.py the `arena battle`
command's errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id


def _conversation(messages, source, line):
    return {
        "prompt_id": prompt_id(messages),
        "messages": messages,
        "source": source,
        "source_id": None,
        "source_file": source,
        "source_line": line,
        "metadata": "{}",
    }


def write_arena(root: Path, shared_data: Path, tiny_llama) -> Path:
    """Four Arena-Hard prompts and one two-turn MT-bench prompt as an eval set in `root`;
    rosters of 3 and 4 models (the tiny Llama and recorded GPT answers) and of two judges
    (the tiny Llama, and recorded answers: garbage for a judge). Returns `root`."""
    rows = []
    with open(shared_data / "prompts" / "arena_hard_v0.1.jsonl") as f:
        for line in range(4):
            prompt = json.loads(next(f))["prompt"]
            rows.append(_conversation([{"role": "user", "content": prompt}], "ah", line))
    with open(shared_data / "prompts" / "mt_bench.jsonl") as f:
        turns = json.loads(next(f))["turns"]
    rows.append(_conversation([{"role": "user", "content": t} for t in turns], "mt", 0))
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), root / "evalset" / "part-0.parquet"
    )
    answers = shared_data / "answers" / "arena-hard-v0.1"
    entries = [
        "defaults:\n  sampling: {max_tokens: 16}\nmodels:",
        f"  - {{name: tiny, backend: transformers, path: '{tiny_llama}'}}",
    ] + [
        f"  - {{name: {m}, backend: recorded, path: '{answers / m}.jsonl'}}"
        for m in ("gpt-4-0314", "gpt-3.5-turbo-0125", "gpt-4-0613")
    ]
    (root / "roster3.yaml").write_text("\n".join(entries[:4]) + "\n")
    (root / "roster4.yaml").write_text("\n".join(entries) + "\n")
    (root / "judges.yaml").write_text(
        "models:\n"
        f"  - {{name: tiny-judge, backend: transformers, path: '{tiny_llama}',"
        " sampling: {max_tokens: 200}}\n"
        # A real backend whose output is garbage for a judge: it has no reply to judge prompts.
        f"  - {{name: recorded-judge, backend: recorded, path: '{answers}/gpt-4-0314.jsonl'}}\n"
    )
    return root


def battle_argv(arena: Path, roster: str, *extra: str) -> list[str]:
    """`arena battle` arguments on the arena in `arena`, judged by the tiny judge."""
    return [
        "battle",
        "--roster",
        str(arena / roster),
        "--judge-roster",
        str(arena / "judges.yaml"),
        "--judge",
        "tiny-judge",
        "--evalset",
        str(arena / "evalset"),
        "--out",
        str(arena / "out"),
        *extra,
    ]
