"""The prompts of a battle: an eval-set folder of canonical conversations in, a small
Parquet file of (prompt_id, messages) out, which every answer and judge task reads.
Prompts some battling model cannot answer (recorded answers cover only their own
prompts) are left out before the limit and counted, so a limit of N is N full battles.
Each prompt keeps the eval set's `subset` (diverse / hard / both in a Mix set) and
`cluster`, null where the folder has none (an ingested pool), so battle records carry
them and ratings can be split by them (`arena elo --by subset`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from arena_models.roster import make_backend
from core.errors import UserError
from core.parquet_io import part_files, require_columns, write_parquet_atomic
from core.schemas import MESSAGE

PROMPTS = pa.schema([("prompt_id", pa.string()), ("messages", pa.list_(MESSAGE))])
# Where a prompt sits in the eval set: what each battle record carries of it.
GROUPS = pa.schema([("subset", pa.string()), ("cluster", pa.int64())])
GROUP_COLUMNS = tuple(GROUPS.names)
PLACED_PROMPTS = pa.schema([*PROMPTS, *GROUPS])  # the run's _work/prompts.parquet


def as_prompt(messages: list[dict]) -> list[dict]:
    """What models answer: the conversation without trailing assistant turns (a pool row
    that carries its own answer is asked again), so it ends with a user turn."""
    end = len(messages)
    while end and messages[end - 1]["role"] == "assistant":
        end -= 1
    return [{"role": m["role"], "content": m["content"]} for m in messages[:end]]


def load_prompts(
    evalset: str | Path, limit: int | None = None, answerers: list = ()
) -> tuple[pa.Table, dict]:
    """Prompts of an eval set, sorted by prompt_id, deduplicated, without rows that have no
    user turn or that some model of `answerers` (ModelSpecs) cannot answer; then the first
    `limit` of them. Also returns what was left out: `answerable`'s counts, and the rows
    without a user turn (null or empty messages) and repeating a prompt_id."""
    parts = part_files(evalset)
    if not parts:
        raise UserError(
            f"{evalset}: no part-*.parquet files (an eval set or `arena ingest` output)"
        )
    require_columns(pq.read_schema(parts[0]), ("prompt_id", "messages"), str(evalset))
    table = pa.concat_tables(_read_part(p) for p in parts)
    rows, groups, no_user_turn, repeated = {}, {}, 0, 0
    for pid, messages, subset, cluster in zip(
        *(table.column(c).to_pylist() for c in ("prompt_id", "messages", *GROUP_COLUMNS))
    ):
        prompt = as_prompt(messages or [])
        if not any(m["role"] == "user" for m in prompt):
            no_user_turn += 1
        elif pid in rows:
            repeated += 1
        else:
            rows[pid] = prompt
            groups[pid] = (subset, cluster)
    if not rows:
        raise UserError(f"{evalset}: no prompt with a user turn")
    ids, left_out = answerable({i: rows[i] for i in sorted(rows)}, answerers)
    left_out.update(no_user_turn=no_user_turn, repeated=repeated)
    if not ids:
        raise UserError(f"{evalset}: no prompt every roster model can answer: {lacks(left_out)}")
    ids = ids[:limit]
    prompts = pa.table(
        {
            "prompt_id": ids,
            "messages": [rows[i] for i in ids],
            "subset": [groups[i][0] for i in ids],
            "cluster": [groups[i][1] for i in ids],
        },
        schema=PLACED_PROMPTS,
    )
    return prompts, left_out


def _read_part(path: Path) -> pa.Table:
    """prompt_id, messages, subset and cluster of one part (null columns where it has none)."""
    names = pq.read_schema(path).names
    table = pq.read_table(
        path, columns=["prompt_id", "messages", *(c for c in GROUP_COLUMNS if c in names)]
    )
    columns = {"prompt_id": table.column("prompt_id"), "messages": table.column("messages")}
    for name in GROUP_COLUMNS:
        kind = GROUPS.field(name).type
        if name not in names:
            columns[name] = pa.nulls(table.num_rows, kind)
            continue
        try:
            columns[name] = table.column(name).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            found = table.schema.field(name).type
            raise UserError(f"{path}: column {name} is {found}, expected {kind}") from None
    return pa.table(columns)


def answerable(prompts: dict[str, list[dict]], specs: list) -> tuple[list[str], dict]:
    """The prompt ids every model of `specs` can answer, in order, and what was left out:
    {"prompts": count, "of": all prompts, "by_model": {model: prompts it cannot answer}}.
    A backend with `covers` (recorded answers: an index read here) knows which prompts it
    answers; any other answers every prompt."""
    ids, conversations = list(prompts), list(prompts.values())
    lacking = {}
    for spec in specs:
        covers = getattr(make_backend(spec), "covers", None)
        if covers is not None:
            lacked = {i for i, ok in zip(ids, covers(conversations)) if not ok}
            if lacked:
                lacking[spec.name] = lacked
    dropped = set().union(*lacking.values())
    left_out = {
        "prompts": len(dropped),
        "of": len(ids),
        "by_model": {m: len(lacked) for m, lacked in lacking.items()},
    }
    return [i for i in ids if i not in dropped], left_out


def lacks(left_out: dict) -> str:
    """Which models left prompts out, and how many each, as one phrase."""
    return "no recorded answer from " + ", ".join(
        f"{m} ({n})" for m, n in left_out["by_model"].items()
    )


def write_prompts(table: pa.Table, path: Path) -> None:
    write_parquet_atomic(table, path)


def read_prompts(path: str | Path, prompt_ids: list[str] | None = None) -> dict[str, list[dict]]:
    """prompt_id -> messages, for `prompt_ids` (None: all)."""
    filters = [("prompt_id", "in", list(prompt_ids))] if prompt_ids is not None else None
    table = pq.read_table(path, filters=filters)
    return dict(zip(table.column("prompt_id").to_pylist(), table.column("messages").to_pylist()))
