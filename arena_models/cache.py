"""Answer and verdict caches: folders of append-only Parquet parts with a key index.

Layout under the cache root:
    answers/<model>/part-<uuid>.parquet    one row per (model, prompt_id, sampling_key)
    verdicts/<judge>/part-<uuid>.parquet   one row per (judge, judge_key, prompt_id,
                                           model_a, model_b, game, answers_key)
Every writer (a Dask task) adds a new part under a fresh name, written to a
temporary file and renamed, so several workers can write at once, a killed
writer leaves nothing half-written, and nothing is ever rewritten. At start a
run loads the key index (the key columns of every part) and asks only for
what is missing. Part names start with the time they were written, so when a
key lands twice (a failed verdict judged again, a task retried after its
worker died) readers keep the newest row.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from arena_models.judge import BACKEND_FAILED
from core.parquet_io import remove_temporaries, write_parquet_atomic
from core.schemas import short_hash

ANSWER = pa.schema(
    [
        ("model", pa.string()),
        ("prompt_id", pa.string()),
        # Hash of the sampling parameters and of what else shapes the answer (backend, path...).
        ("sampling_key", pa.string()),
        ("answers", pa.list_(pa.string())),  # one per user turn
        ("finish_reasons", pa.list_(pa.string())),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
    ]
)
ANSWER_KEY = ("model", "prompt_id", "sampling_key")

VERDICT = pa.schema(
    [
        ("judge", pa.string()),
        ("judge_key", pa.string()),  # template, sampling and retries of the judge
        ("prompt_id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("game", pa.int8()),
        ("answers_key", pa.string()),  # which two cached answers were judged
        ("score_a", pa.float32()),  # as the judge's scoring gives them (discrete or expected)
        ("score_b", pa.float32()),
        ("expected_a", pa.float32()),  # probability-weighted scores, when computed
        ("expected_b", pa.float32()),
        ("error", pa.string()),
        ("explanation", pa.string()),
        ("raw", pa.string()),  # the judge's last reply, verbatim
        ("constraint", pa.string()),  # regex | json | none: how the format was enforced
        ("finish_reason", pa.string()),  # stop | length (cut off: an error) | None
        ("attempts", pa.int8()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
    ]
)
VERDICT_KEY = ("judge", "judge_key", "prompt_id", "model_a", "model_b", "game", "answers_key")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name: str) -> str:
    """A file-system-safe folder for a model or judge name, unique per exact name."""
    return f"{_UNSAFE.sub('_', name)[:60]}-{short_hash(name, 4)}"


class PartCache:
    """One folder of parts sharing `schema`; rows identified by `key` columns."""

    def __init__(self, folder: str | Path, schema: pa.Schema, key: tuple[str, ...]):
        self.folder = Path(folder)
        self.schema = schema
        self.key = key

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def append(self, table: pa.Table) -> Path | None:
        """Add rows as a new part (atomic); None when there are no rows."""
        if table.num_rows == 0:
            return None
        table = table.select(self.schema.names).cast(self.schema)
        path = self.folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
        write_parquet_atomic(table, path)
        return path

    def read(self, columns: list[str] | None = None, where=None) -> pa.Table:
        """Rows (newest copy of each key), optionally filtered by a pyarrow expression."""
        parts = self.parts()
        if not parts:
            return self.schema.empty_table().select(columns or self.schema.names)
        wanted = list(dict.fromkeys([*self.key, *(columns or self.schema.names)]))
        # Part by part, in name (= time) order, so the newest copy of a key comes last.
        table = pa.concat_tables(pq.read_table(p, columns=wanted, filters=where) for p in parts)
        return _newest_per_key(table, self.key).select(columns or self.schema.names)

    def keys(self, extra: tuple[str, ...] = ()) -> pa.Table:
        """The key index: key columns (and `extra` ones) of every row."""
        return self.read(columns=[*self.key, *extra])

    def clean(self) -> None:
        if self.folder.is_dir():
            remove_temporaries(self.folder)


def _newest_per_key(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """Rows come in part order (oldest part first): keep the last row of each key."""
    if table.num_rows == 0:
        return table
    indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    newest = indexed.group_by(list(key), use_threads=False).aggregate([("__row", "max")])
    if newest.num_rows == table.num_rows:
        return table
    rows = newest.column("__row_max")
    return table.take(pc.take(rows, pc.sort_indices(rows)))


class AnswerCache:
    """Answers per model: `<root>/answers/<model>/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / "answers"

    def model(self, name: str) -> PartCache:
        return PartCache(self.root / folder_name(name), ANSWER, ANSWER_KEY)

    def keys(self, name: str, sampling_key: str) -> set[str]:
        """prompt_ids already answered by `name` with these settings."""
        index = self.model(name).keys()
        mask = pc.equal(index.column("sampling_key"), sampling_key)
        return set(index.filter(mask).column("prompt_id").to_pylist())

    def lookup(self, name: str, sampling_key: str, prompt_ids: list[str]) -> dict[str, dict]:
        """prompt_id -> cached answer row, for the ids that have one."""
        where = (ds.field("sampling_key") == sampling_key) & ds.field("prompt_id").isin(
            list(prompt_ids)
        )
        rows = self.model(name).read(where=where).to_pylist()
        return {r["prompt_id"]: r for r in rows}


class VerdictCache:
    """Verdicts per judge: `<root>/verdicts/<judge>/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root) / "verdicts"

    def judge(self, name: str) -> PartCache:
        return PartCache(self.root / folder_name(name), VERDICT, VERDICT_KEY)

    def keys(self, name: str, judge_key: str, *, rejudge_errors: bool = False) -> set[tuple]:
        """(prompt_id, model_a, model_b, game, answers_key) judged with these settings, less
        the games the judge never answered (judged again); `rejudge_errors` leaves out every
        failed verdict, unreadable replies too."""
        index = self.judge(name).keys(extra=("error",))
        mask = pc.equal(index.column("judge_key"), judge_key)
        error = index.column("error")
        retry = pc.is_valid(error) if rejudge_errors else pc.starts_with(error, BACKEND_FAILED)
        mask = pc.and_(mask, pc.invert(pc.fill_null(retry, False)))
        rows = index.filter(mask)
        columns = ["prompt_id", "model_a", "model_b", "game", "answers_key"]
        return set(zip(*(rows.column(c).to_pylist() for c in columns)))

    def read(self, name: str, judge_key: str, prompt_ids: list[str] | None = None) -> pa.Table:
        where = ds.field("judge_key") == judge_key
        if prompt_ids is not None:
            where = where & ds.field("prompt_id").isin(list(prompt_ids))
        return self.judge(name).read(where=where)
