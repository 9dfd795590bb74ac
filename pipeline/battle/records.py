"""Battle records (core.schemas.BATTLE, one row per game, plus the prompt's eval-set
`subset` and `cluster`) and the combined per-pair table, built from the verdict cache
for exactly the battles of this run.

A game that could not be judged because an answer is missing gets a record too,
with a null winner and the reason in `error`, so nothing scheduled vanishes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from core.parquet_io import write_json_atomic, write_parquet_atomic
from core.schemas import BATTLE
from pipeline.battle.combine import combine_pair, game_winner
from pipeline.battle.prompts import GROUP_COLUMNS, GROUPS

# Where the prompt sits in the eval set (null for a pool without them): `arena elo --by`.
RECORD = pa.schema([*BATTLE, *GROUPS])
COMBINED = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("judge", pa.string()),
        ("score_a", pa.float32()),  # summed over both games
        ("score_b", pa.float32()),
        ("winner", pa.string()),  # model_a | model_b | tie; null when a game failed
        ("consistent", pa.bool_()),  # both games had the same winner (null: a game failed)
        ("game1_winner", pa.string()),
        ("game2_winner", pa.string()),
        ("error", pa.string()),
        *GROUPS,
    ]
)
ROWS_PER_PART = 100_000
# What a record carries over from its verdict besides scores and error.
VERDICT_DETAIL = (
    "explanation",
    "raw",
    "constraint",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
)


def battle_records(
    games: list[dict], verdicts: pa.Table, judge: str, prompts: pa.Table | None = None
) -> pa.Table:
    """`games`: scheduled games (prompt_id, model_a, model_b, game, answers_key or None,
    missing: the reason when an answer is missing). `verdicts`: cache rows of this judge.
    `prompts`: the run's prompts (pipeline.battle.prompts.PLACED_PROMPTS), whose subset and
    cluster each record carries."""
    key = ("prompt_id", "model_a", "model_b", "game", "answers_key")
    found = {tuple(r[k] for k in key): r for r in verdicts.to_pylist()}
    groups = _groups(prompts)
    rows = []
    for g in games:
        v = found.get(tuple(g[k] for k in key)) if g.get("answers_key") else None
        if v is None:
            error = g.get("missing") or "no verdict (the judge task did not finish)"
            v = {"score_a": None, "score_b": None, "error": error}
        rows.append(
            {
                "prompt_id": g["prompt_id"],
                "model_a": g["model_a"],
                "model_b": g["model_b"],
                "judge": judge,
                "game": g["game"],
                "score_a": v["score_a"],
                "score_b": v["score_b"],
                "winner": None if v["error"] else game_winner(v["score_a"], v["score_b"]),
                "error": v["error"],
                **{k: v.get(k) for k in VERDICT_DETAIL},
                **groups.get(g["prompt_id"], {}),
            }
        )
    return pa.Table.from_pylist(rows, RECORD)


def _groups(prompts: pa.Table | None) -> dict[str, dict]:
    """prompt_id -> {subset, cluster} of the prompts that have them."""
    if prompts is None or not set(GROUP_COLUMNS) <= set(prompts.column_names):
        return {}
    columns = [prompts.column(c).to_pylist() for c in ("prompt_id", *GROUP_COLUMNS)]
    return {pid: dict(zip(GROUP_COLUMNS, values)) for pid, *values in zip(*columns)}


def combined_pairs(records: pa.Table, rule: str) -> pa.Table:
    """One row per (prompt, pair, judge): the two games combined by `rule`."""
    games: dict[tuple, dict[int, dict]] = {}
    where: dict[str, dict] = {}
    for r in records.to_pylist():
        games.setdefault((r["prompt_id"], r["model_a"], r["model_b"], r["judge"]), {})[
            r["game"]
        ] = r
        where[r["prompt_id"]] = {c: r.get(c) for c in GROUP_COLUMNS}
    rows = []
    missing = {"winner": None, "error": "game not scheduled", "score_a": None, "score_b": None}
    for (pid, a, b, judge), pair in games.items():
        g1, g2 = pair.get(1, missing), pair.get(2, missing)
        rows.append(
            {
                "prompt_id": pid,
                "model_a": a,
                "model_b": b,
                "judge": judge,
                **combine_pair(g1, g2, rule),
                "game1_winner": g1["winner"],
                "game2_winner": g2["winner"],
                **where[pid],
            }
        )
    return pa.Table.from_pylist(rows, COMBINED)


def write_table(table: pa.Table, folder: Path, manifest: dict) -> list[Path]:
    """Replace a folder's parts with `table` (new parts first, then stale ones removed),
    with a manifest beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for n, start in enumerate(range(0, max(table.num_rows, 1), ROWS_PER_PART)):
        path = folder / f"part-{n:05d}.parquet"
        write_parquet_atomic(table.slice(start, ROWS_PER_PART), path)
        written.append(path)
    for stale in set(folder.glob("part-*.parquet")) - set(written):
        stale.unlink()
    write_json_atomic(
        {**manifest, "rows": table.num_rows, "parts": len(written)}, folder / "_manifest.json"
    )
    return written
