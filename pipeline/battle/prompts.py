"""The prompts of a battle: an eval-set folder of canonical conversations in, a small
Parquet file of (prompt_id, messages) out, which every answer and judge task reads."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.parquet_io import part_files, require_columns, write_parquet_atomic
from core.schemas import MESSAGE

PROMPTS = pa.schema([("prompt_id", pa.string()), ("messages", pa.list_(MESSAGE))])


def as_prompt(messages: list[dict]) -> list[dict]:
    """What models answer: the conversation without trailing assistant turns (a pool row
    that carries its own answer is asked again), so it ends with a user turn."""
    end = len(messages)
    while end and messages[end - 1]["role"] == "assistant":
        end -= 1
    return [{"role": m["role"], "content": m["content"]} for m in messages[:end]]


def load_prompts(evalset: str | Path, limit: int | None = None) -> pa.Table:
    """Prompts of an eval set, sorted by prompt_id (the first `limit` of them), deduplicated;
    rows with no user turn are left out."""
    parts = part_files(evalset)
    if not parts:
        raise UserError(
            f"{evalset}: no part-*.parquet files (an eval set or `arena ingest` output)"
        )
    require_columns(pq.read_schema(parts[0]), ("prompt_id", "messages"), str(evalset))
    table = pa.concat_tables(pq.read_table(p, columns=["prompt_id", "messages"]) for p in parts)
    rows = {}
    for pid, messages in zip(
        table.column("prompt_id").to_pylist(), table.column("messages").to_pylist()
    ):
        prompt = as_prompt(messages or [])
        if pid not in rows and any(m["role"] == "user" for m in prompt):
            rows[pid] = prompt
    ids = sorted(rows)[:limit] if limit else sorted(rows)
    if not ids:
        raise UserError(f"{evalset}: no prompt with a user turn")
    return pa.table({"prompt_id": ids, "messages": [rows[i] for i in ids]}, schema=PROMPTS)


def write_prompts(table: pa.Table, path: Path) -> None:
    write_parquet_atomic(table, path)


def read_prompts(path: str | Path, prompt_ids: list[str] | None = None) -> dict[str, list[dict]]:
    """prompt_id -> messages, for `prompt_ids` (None: all)."""
    filters = [("prompt_id", "in", list(prompt_ids))] if prompt_ids is not None else None
    table = pq.read_table(path, filters=filters)
    return dict(zip(table.column("prompt_id").to_pylist(), table.column("messages").to_pylist()))
