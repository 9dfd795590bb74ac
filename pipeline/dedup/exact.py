"""Exact dedup as a two-step Dask shuffle through files, so it resumes and scales.

1. ShuffleByKey: each input part computes the normalised-text hash of every row
   and writes the rows into `buckets` hash buckets (one file per input part and
   bucket).
2. ExactDedup: each bucket keeps, per key, the row that comes first by
   (source_file, source_line), and reports every dropped row with the row it
   duplicates.

No step ever holds more than one input part or one bucket in memory. A bucket's kept
rows are written in row groups of ROW_GROUP_ROWS, so a reader of a slice of the part
(an embed task) can decode that slice alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import part_files, require_columns, write_parquet_atomic
from core.schemas import normalize_text, short_hash
from core.stage import FolderStage, PartResult, Stage, Task

KEY = "dedup_key"
# Kept rows are written in row groups of this many rows (EmbedConfig.rows_per_task), so a
# later task that reads a slice of a bucket's part need not decode the whole bucket.
ROW_GROUP_ROWS = 1024
ORDER = [("source_file", "ascending"), ("source_line", "ascending")]

DROPPED = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        (KEY, pa.string()),
        ("duplicate_of", pa.string()),  # prompt_id of the kept row
        ("duplicate_of_file", pa.string()),
        ("duplicate_of_line", pa.int64()),
    ]
)


@dataclass(frozen=True)
class ExactDedupConfig:
    buckets: int = field(default=0, metadata={"help": "hash buckets (0: by input size)"})
    rows_per_bucket: int = 250_000

    def __post_init__(self):
        if self.buckets < 0 or self.rows_per_bucket < 1:
            raise UserError(f"--buckets {self.buckets}: expected 0 (by input size) or more")

    def resolved_buckets(self, total_rows: int) -> int:
        return self.buckets or max(1, math.ceil(total_rows / self.rows_per_bucket))


def text_key(messages: list[dict]) -> str:
    """Rows with the same normalised turns (roles included) share a key."""
    return short_hash(
        "\x1e".join(f"{m['role']}\x1f{normalize_text(m['content'])}" for m in messages)
    )


class ShuffleByKey(FolderStage):
    """Input parts -> rows with `dedup_key`, spread over hash buckets."""

    name = "exact-dedup-shuffle"
    needs = ("messages", "source_file", "source_line")
    makes = (KEY,)

    def __init__(self, pool: Path, out: Path, buckets: int):
        super().__init__(pool, out, {"buckets": buckets})
        self.buckets = buckets

    def process(self, task: Task) -> PartResult:
        table = pq.read_table(task.params["path"])
        require_columns(table.schema, self.needs, task.params["path"])
        keys = [text_key(m) for m in table.column("messages").to_pylist()]
        bucket_of = pa.array([int(k[:8], 16) % self.buckets for k in keys], pa.int32())
        table = table.append_column(KEY, pa.array(keys, pa.string()))
        for bucket in range(self.buckets):
            part = table.filter(pc.equal(bucket_of, bucket))
            if part.num_rows:
                write_parquet_atomic(part, self.out / f"b-{bucket:05d}" / f"{task.name}.parquet")
        return PartResult(task.name, table.num_rows, table.num_rows, content_hash=table_hash(table))


class ExactDedup(FolderStage):
    """Hash buckets -> one row per normalised text, plus a report of the dropped rows."""

    name = "exact-dedup"
    needs = (KEY, "prompt_id", "source_file", "source_line")

    def __init__(self, pool: Path, out: Path, config: ExactDedupConfig, total_rows: int):
        super().__init__(pool, out, config)
        self.buckets = config.resolved_buckets(total_rows)
        self.shuffled = self.out / "_shuffle"

    def work_stages(self) -> list[Stage]:
        return [ShuffleByKey(self.pool, self.shuffled, self.buckets)]

    def plan(self) -> list[Task]:
        return [Task(f"part-{b:05d}", {"bucket": b}) for b in range(self.buckets)]

    def process(self, task: Task) -> PartResult:
        files = sorted((self.shuffled / f"b-{task.params['bucket']:05d}").glob("*.parquet"))
        if not files:
            kept = pq.read_schema(part_files(self.pool)[0]).empty_table()
            dropped = DROPPED.empty_table()
        else:
            table = pa.concat_tables(pq.read_table(f) for f in files)
            kept, dropped = _split_duplicates(table)
        write_parquet_atomic(kept, self.out / f"{task.name}.parquet", ROW_GROUP_ROWS)
        write_parquet_atomic(dropped, self.out / "_dropped" / f"{task.name}.parquet")
        rows_in = kept.num_rows + dropped.num_rows
        return PartResult(
            task.name,
            rows_in,
            kept.num_rows,
            content_hash=table_hash(kept),
            stats={"dropped": dropped.num_rows},
        )

    def summary(self, results: list[PartResult]) -> dict:
        return {"buckets": self.buckets, "dropped": sum(r.stats["dropped"] for r in results)}


def _split_duplicates(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(kept rows without the key column, report of dropped rows). Columnar: no Python
    object per row, so a bucket costs its Arrow size and a few bytes a row more."""
    table = table.sort_by([(KEY, "ascending"), *ORDER])
    keys = table.column(KEY).combine_chunks()
    n = len(keys)
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = pc.not_equal(keys[1:], keys[:-1]).to_numpy(zero_copy_only=False)
    kept = table.filter(pa.array(first)).sort_by(ORDER)

    # For each dropped row, the kept row is the last "first" row before it.
    positions = np.arange(n)
    head = np.maximum.accumulate(np.where(first, positions, 0))
    dropped_at = positions[~first]
    rows = table.take(pa.array(dropped_at, pa.int64()))
    heads = table.take(pa.array(head[dropped_at], pa.int64()))
    report = pa.table(
        [
            rows.column("prompt_id"),
            rows.column("source_file"),
            rows.column("source_line"),
            rows.column(KEY),
            heads.column("prompt_id"),
            heads.column("source_file"),
            heads.column("source_line"),
        ],
        names=DROPPED.names,
    ).cast(DROPPED)
    return kept.drop_columns([KEY]), report
