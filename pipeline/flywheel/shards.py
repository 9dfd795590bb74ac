"""Shard folders a trl (>= 1.0) trainer loads as they are, and the manifest a training job reads.

Row schemas, in trl's conversational formats (messages are {role, content}):
    sft      prompt (messages), completion ([assistant answer])       SFTTrainer
    dpo      prompt (messages), chosen, rejected ([assistant answer]) DPOTrainer
    reward   chosen, rejected (whole conversations: implicit prompt), margin
                                                                      RewardTrainer
each followed by provenance columns (where the row came from and the scores behind it).

Layout of a shard folder:
    part-00000.parquet ...   at most `shard_rows` rows each, in a deterministic order
    _dropped/part-00000.parquet   what was left out, with the reason
    _jsonl/part-00000.jsonl  the same rows as JSON lines (only with `jsonl`)
    _manifest.json           written last: a folder without one is not finished
Side outputs have `_` names, so `pandas.read_parquet(folder)` and
`datasets.load_dataset("parquet", data_files=f"{folder}/part-*.parquet")` read the rows.
The same rows and config give byte-identical files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa

from core.errors import UserError
from core.hashing import combine_hashes, config_hash, table_hash
from core.parquet_io import write_json_atomic, write_parquet_atomic, write_text_atomic
from core.schemas import MESSAGE

MESSAGES = pa.list_(MESSAGE)
PROVENANCE = [
    ("prompt_id", pa.string()),
    ("slice", pa.int64()),  # the training-pool slice Dk the run battled on (null: not given)
    ("battle_run", pa.string()),  # the run folder, relative to the shard folder
    ("judge", pa.string()),
    ("target", pa.string()),
]
PAIR_PROVENANCE = [
    ("chosen_model", pa.string()),
    ("rejected_model", pa.string()),
    ("chosen_score", pa.float32()),  # per-game averages (1-10), both games
    ("rejected_score", pa.float32()),
    ("gap", pa.float32()),
]
SCHEMAS = {
    "sft": pa.schema(
        [
            ("prompt", MESSAGES),
            ("completion", MESSAGES),
            *PROVENANCE,
            ("source_model", pa.string()),  # whose answer is the completion
            ("target_score", pa.float32()),
            ("source_score", pa.float32()),
            ("gap", pa.float32()),
        ]
    ),
    "dpo": pa.schema(
        [("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES)]
        + PROVENANCE
        + PAIR_PROVENANCE
    ),
    "reward": pa.schema(
        [("chosen", MESSAGES), ("rejected", MESSAGES), ("margin", pa.float32())]
        + PROVENANCE
        + PAIR_PROVENANCE
    ),
}
FORMATS = {
    "sft": "trl conversational prompt-completion (SFTTrainer): prompt, completion",
    "dpo": "trl conversational preference, explicit prompt (DPOTrainer): prompt, chosen, rejected",
    "reward": "trl conversational preference, implicit prompt (RewardTrainer):"
    " chosen, rejected, margin",
}
DROPPED = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),  # null when the reason is about the prompt, not a pair
        ("battle_run", pa.string()),
        ("reason", pa.string()),
    ]
)


def sort_key(kind: str):
    """Rows in (prompt_id, models, run) order: the same input gives the same files."""
    models = ("source_model",) if kind == "sft" else ("chosen_model", "rejected_model")
    columns = ("prompt_id", *models, "battle_run")
    return lambda row: tuple(row[c] or "" for c in columns)


def write_shards(selection, config, out: str | Path) -> dict:
    """Write `selection` (rows, dropped, stats from pipeline.flywheel.selection.select) as a
    shard folder under `out`; returns the manifest."""
    rows, dropped, stats = selection
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The old manifest goes first, so a half-rewritten folder never looks finished.
    (out / "_manifest.json").unlink(missing_ok=True)
    # Provenance points at runs relative to the shard, so a moved or re-made OUT (the
    # same config elsewhere) gives the same bytes.
    rows = _relative_runs(rows.cast(SCHEMAS[config.kind]), out)
    dropped = _relative_runs(dropped.cast(DROPPED), out)
    hashes, written = {}, []
    for n, start in enumerate(range(0, max(rows.num_rows, 1), config.shard_rows)):
        part = rows.slice(start, config.shard_rows)
        name = f"part-{n:05d}"
        write_parquet_atomic(part, out / f"{name}.parquet")
        hashes[name] = table_hash(part)
        written.append(f"{name}.parquet")
    for stale in sorted(out.glob("part-*.parquet")):
        if stale.name not in written:
            stale.unlink()
    write_parquet_atomic(dropped.cast(DROPPED), out / "_dropped" / "part-00000.parquet")
    jsonl = out / "_jsonl" / "part-00000.jsonl"
    if config.jsonl:
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows.to_pylist()]
        write_text_atomic("".join(lines), jsonl)
    else:
        jsonl.unlink(missing_ok=True)
    manifest = {
        "kind": config.kind,
        "format": FORMATS[config.kind],
        "columns": SCHEMAS[config.kind].names,
        "rows": rows.num_rows,
        "parts": written,
        "content_hash": combine_hashes(hashes),
        "jsonl": "_jsonl/part-00000.jsonl" if config.jsonl else None,
        "dropped_rows": dropped.num_rows,
        **stats,
        "thresholds": {f"{config.kind}_gap": config.gap},
        "config": asdict(config),
        "config_hash": config_hash(asdict(config)),
        "trained": None,  # filled by the training job that reads this folder
    }
    write_json_atomic(manifest, out / "_manifest.json")
    return manifest


def _relative_runs(table: pa.Table, out: Path) -> pa.Table:
    runs = [
        None if r is None else os.path.relpath(Path(r).resolve(), out.resolve())
        for r in table.column("battle_run").to_pylist()
    ]
    index = table.schema.get_field_index("battle_run")
    return table.set_column(index, "battle_run", pa.array(runs, pa.string()))


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a finished shard folder (UserError if it has none)."""
    path = Path(folder) / "_manifest.json"
    if not path.is_file():
        raise UserError(
            f"{folder}: no _manifest.json (not a shard folder, or its writing did not finish)"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("kind") not in SCHEMAS:
        raise UserError(
            f"{folder}: _manifest.json is not a shard manifest (no sft/dpo/reward kind)"
        )
    return manifest
