"""Exact dedup as a two-step Dask shuffle through files, so it resumes and scales.

1. ShuffleByKey: each input part computes the normalised-text hash of every row
   and writes the rows into `buckets` hash buckets (one file per input part and
   bucket).
2. ExactDedup: each bucket keeps, per key, the row that comes first by
   (source_file, source_line), and reports every dropped row with the row it
   duplicates.

No step ever holds more than one input part or one bucket in memory.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import folder_fingerprint, table_hash
from core.parquet_io import part_files, require_columns, write_parquet_atomic
from core.schemas import normalize_text, short_hash
from core.stage import PartResult, Stage, Task

KEY = "dedup_key"
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


class ShuffleByKey(Stage):
    """Input parts -> rows with `dedup_key`, spread over hash buckets."""

    name = "exact-dedup-shuffle"
    needs = ("messages", "source_file", "source_line")
    makes = (KEY,)

    def __init__(self, pool: Path, out: Path, buckets: int):
        super().__init__(out, {"buckets": buckets})
        self.pool = Path(pool)
        self.buckets = buckets

    def config_dict(self) -> dict:
        return {"stage": self.name, "buckets": self.buckets, "input": folder_fingerprint(self.pool)}

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.pool)]

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


class ExactDedup(Stage):
    """Hash buckets -> one row per normalised text, plus a report of the dropped rows."""

    name = "exact-dedup"
    needs = (KEY, "prompt_id", "source_file", "source_line")

    def __init__(self, pool: Path, out: Path, config: ExactDedupConfig, total_rows: int):
        super().__init__(out, config)
        self.pool = Path(pool)
        self.buckets = config.resolved_buckets(total_rows)
        self.shuffled = self.out / "_shuffle"

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.pool)}

    def input_fingerprints(self) -> list[dict]:
        return [folder_fingerprint(self.pool)]

    def shuffle_stage(self) -> ShuffleByKey:
        return ShuffleByKey(self.pool, self.shuffled, self.buckets)

    def clean_work(self) -> None:
        """The shuffle files are only needed until every bucket is done."""
        shutil.rmtree(self.shuffled, ignore_errors=True)

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
        write_parquet_atomic(kept, self.out / f"{task.name}.parquet")
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
    """(kept rows without the key column, report of dropped rows)."""
    table = table.sort_by([(KEY, "ascending"), *ORDER])
    keys = table.column(KEY).to_pylist()
    first = [i == 0 or keys[i] != keys[i - 1] for i in range(len(keys))]
    is_first = pa.array(first)
    kept = table.filter(is_first).sort_by(ORDER)

    # For each dropped row, the kept row is the last "first" row before it.
    ids = table.column("prompt_id").to_pylist()
    files = table.column("source_file").to_pylist()
    lines = table.column("source_line").to_pylist()
    report, head = [], 0
    for i, keep in enumerate(first):
        if keep:
            head = i
            continue
        report.append(
            {
                "prompt_id": ids[i],
                "source_file": files[i],
                "source_line": lines[i],
                KEY: keys[i],
                "duplicate_of": ids[head],
                "duplicate_of_file": files[head],
                "duplicate_of_line": lines[head],
            }
        )
    return kept.drop_columns([KEY]), pa.Table.from_pylist(report, schema=DROPPED)
