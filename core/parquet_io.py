"""Atomic Parquet and JSON writes, and readers for stage folders.

A stage folder holds its rows as `part-*.parquet` at the top level. Side outputs
(quarantine, reports, shuffle files, completion markers) live in folders whose
names start with `_`, which Arrow's dataset discovery skips, so
`pandas.read_parquet(folder)` reads exactly the stage's rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import combine_hashes, table_hash

# The files published by the atomic writers below while `recording_writes` is open: how a
# stage task's completion marker learns every file the task wrote, whichever stage it is.
_WRITTEN: contextvars.ContextVar[dict[Path, None] | None] = contextvars.ContextVar(
    "written", default=None
)


@contextlib.contextmanager
def recording_writes():
    """Yields the (ordered, unique) list of paths the atomic writers publish inside."""
    written: dict[Path, None] = {}
    token = _WRITTEN.set(written)
    try:
        yield written
    finally:
        _WRITTEN.reset(token)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def _publish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    written = _WRITTEN.get()
    if written is not None:
        written[path] = None


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yields a hidden temporary name to write `path` under, published by a rename when the
    block ends: readers never see half a file, and a failed write (a full disk) leaves
    neither a partial `path` nor the temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _publish(tmp, path)


@contextlib.contextmanager
def atomic_folder(path: Path, *, replace: bool = False):
    """Yields a hidden temporary folder to fill, published as `path` by one rename when the
    block ends: readers see no folder or a whole one. With `replace`, a `path` already there
    is swapped out, then removed. Without, a `path` that another process published first
    is kept: it was made the same way, so it is as good. The temporary never outlives the
    block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _tmp_name(path), None
    try:
        yield tmp
        if replace and path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if replace or not path.exists():
                raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)


def write_parquet_atomic(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    """`row_group_size` (rows) lets a reader of a slice decode only the row groups it needs."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)


def write_json_atomic(data, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_temporaries(folder: Path) -> None:
    """Drop half-written files a killed run left behind."""
    for tmp in folder.rglob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


def part_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of Parquet parts")
    return sorted(folder.glob("part-*.parquet"))


def consecutive_parts(parts: list[Path], rows: int) -> list[list[tuple[str, int]]]:
    """`parts` cut into runs of consecutive parts of about `rows` rows (from their footers),
    each part as (path, its number in `parts`): one task a run, where a task a part would
    cost too much per task (a file opened per bucket of a shuffle that grows with the pool)."""
    runs, held = [[]], 0
    for number, path in enumerate(parts):
        if held >= rows:
            runs, held = [*runs, []], 0
        runs[-1].append((str(path), number))
        held += pq.ParquetFile(path).metadata.num_rows
    return [run for run in runs if run]


def read_folder(folder: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """All rows of a stage folder (small folders: tests, reports, eval sets)."""
    parts = part_files(folder)
    if not parts:
        raise UserError(f"{folder}: no part-*.parquet files")
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)


def require_columns(schema: pa.Schema, needed, where: str) -> None:
    missing = [c for c in needed if c not in schema.names]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)}")


def write_frame_parts(frame, folder: Path, rows_per_part: int) -> None:
    """A pandas frame as a stage folder: parts of `rows_per_part` rows and a manifest whose
    content hash is the parts' (as a stage's), so later stages can fingerprint it."""
    hashes = {}
    for start in range(0, max(len(frame), 1), rows_per_part):
        table = pa.Table.from_pandas(
            frame.iloc[start : start + rows_per_part], preserve_index=False
        )
        name = f"part-{start // rows_per_part:05d}"
        write_parquet_atomic(table, folder / f"{name}.parquet")
        hashes[name] = table_hash(table)
    write_json_atomic(
        {"rows_out": len(frame), "content_hash": combine_hashes(hashes)}, folder / "_manifest.json"
    )


def read_rows(path, start: int, rows: int) -> pa.Table:
    """Rows [start, start + rows) of a Parquet file, reading only the row groups that hold
    them: a task embedding 1,024 rows of a 250k-row part must not read the whole part."""
    file = pq.ParquetFile(path)
    groups, first, at = [], None, 0
    for g in range(file.metadata.num_row_groups):
        n = file.metadata.row_group(g).num_rows
        if at + n > start and at < start + rows:
            groups.append(g)
            first = at if first is None else first
        at += n
    if not groups:
        return file.schema_arrow.empty_table()
    return file.read_row_groups(groups).slice(start - first, rows)


def require_rows(folder, parts: list[Path]) -> None:
    """A folder whose parts hold no row gives a step nothing to do: one line before a cluster
    starts, not an empty result recorded as done."""
    if not sum(pq.read_metadata(p).num_rows for p in parts):
        raise UserError(f"{folder}: no rows (every part file is empty)")


def check_parts(folder: Path, needs) -> list[Path]:
    """A stage folder's parts, or a one-line error saying why it is not one holding the
    columns `needs` (called before connecting, so a wrong input costs no cluster)."""
    parts = part_files(folder)
    if not parts:
        raise UserError(
            f"{folder}: no part-*.parquet files (expected a folder from `arena ingest`)"
        )
    for path in parts:
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
        require_columns(schema, needs, str(path))
    return parts
