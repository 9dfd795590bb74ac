"""Pool file readers: split a file into tasks, then read one task's raw records.

JSONL is split into byte ranges that end on a newline, so a huge file is read
by many workers at once and a record's line number is known without parsing.
Compressed JSONL (`.jsonl.gz`, `.jsonl.zst`) cannot be split: one task streams it.
JSON arrays are read whole (one task per file); Parquet one task per row group.
A file that cannot be read at all raises UserError with a one-line reason; a folder's
files that are no pool files are named in a warning, never dropped without a word.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from core.errors import UserError

log = logging.getLogger(__name__)

POOL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}  # of JSON text (Arrow's codecs)
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark some editors write before the first line
STREAM_BYTES = 1 << 20  # decompressed bytes a task reads at a time


def is_pool_file(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        return len(suffixes) == 2 and suffixes[0] in (".jsonl", ".ndjson", ".json")
    return bool(suffixes) and suffixes[-1] in POOL_SUFFIXES


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to the pool files inside them (others named on
    stderr); duplicates once."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not _hidden(p.relative_to(path))
            ]
            found = [p for p in inside if is_pool_file(p)]
            if not found:
                raise UserError(
                    f"{path}: folder holds no .jsonl, .json or .parquet files (or .gz, .zst)"
                )
            others = [str(p.relative_to(path)) for p in inside if not is_pool_file(p)]
            if others:
                shown = ", ".join(others[:5]) + (
                    f" and {len(others) - 5} more" if len(others) > 5 else ""
                )
                log.warning("%s: not pool files, not read: %s", path, shown)
            files.extend(found)
        elif not path.exists():
            raise UserError(f"{path}: no such file")
        else:
            files.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    for path in unique:
        if not os.access(path, os.R_OK):
            raise UserError(f"{path}: permission denied")
    return unique


def _hidden(relative: Path) -> bool:
    """`_`- or `.`-named files and folders are not pool data: a stage folder's
    `_manifest.json`, `_done/`, `_quarantine/`, editors' and atomic writes' temporaries."""
    return any(part.startswith(("_", ".")) for part in relative.parts)


def compression(path: Path) -> str | None:
    return COMPRESSIONS.get(path.suffix.lower()) if is_pool_file(path) else None


def source_name(path: str | Path) -> str:
    """A pool file's name without its format and compression suffixes (x.jsonl.gz: x)."""
    path = Path(path)
    return (path.with_suffix("") if compression(path) else path).stem


def _open_text(path: Path):
    """The file's bytes, decompressed as they are read when it is compressed."""
    import pyarrow as pa

    codec = compression(path)
    return pa.input_stream(str(path), compression=codec) if codec else open(path, "rb")


def file_format(path: Path) -> str:
    codec = compression(path)
    suffix = (path.with_suffix("") if codec else path).suffix.lower()
    if suffix == ".parquet" and not codec:
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        try:
            with _open_text(path) as f:
                head = f.read(4096).removeprefix(BOM).lstrip()
        except OSError as exc:
            raise UserError(f"{path}: cannot read it as {codec or 'a file'} ({exc})") from None
        return "json_array" if head.startswith(b"[") else "jsonl"
    raise UserError(
        f"{path}: unknown format {''.join(path.suffixes[-2:]) or '(no suffix)'}; use .jsonl,"
        " .json or .parquet (JSON text may be .gz or .zst)"
    )


def plan_file(path: Path, chunk_bytes: int) -> list[dict]:
    """Task ranges for one file: {"path", "format", ...range...}."""
    fmt = file_format(path)
    if fmt == "jsonl" and compression(path):
        return [{"path": str(path), "format": fmt, "stream": True, "first_line": 1}]
    if fmt == "jsonl":
        return [{"path": str(path), "format": fmt, **c} for c in _jsonl_chunks(path, chunk_bytes)]
    if fmt == "json_array":  # check_file (pool_files) has parsed it once already
        return [{"path": str(path), "format": fmt}]
    meta = _parquet_metadata(path)
    ranges, first = [], 1
    for group in range(meta.num_row_groups):
        ranges.append({"path": str(path), "format": fmt, "row_group": group, "first_line": first})
        first += meta.row_group(group).num_rows
    return ranges


def check_file(path: Path) -> None:
    """Fail now, with one line, on a file no task could read: an unknown suffix, a Parquet
    file without a readable footer, a malformed or non-UTF-8 JSON array. Cheap: a JSON array
    is parsed (it is read whole anyway), a Parquet footer read, a JSONL file not at all (its
    bad lines are quarantined)."""
    fmt = file_format(path)
    if fmt == "json_array":
        _load_array(path)
    elif fmt == "parquet":
        _parquet_metadata(path)
    elif compression(path):
        try:
            with _open_text(path) as f:
                f.read(1)
        except OSError as exc:
            raise UserError(f"{path}: not readable as {compression(path)} ({exc})") from None


def _parquet_metadata(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata
    except Exception as exc:  # noqa: BLE001 - any Arrow error means "unreadable"
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None


def _jsonl_chunks(path: Path, chunk_bytes: int) -> Iterator[dict]:
    size = path.stat().st_size
    start, line = 0, 1
    with open(path, "rb") as f:
        while start < size:
            f.seek(start)
            data = f.read(chunk_bytes)
            while not data.endswith(b"\n"):  # extend to the end of the line
                more = f.read(1 << 16)
                if not more:
                    break
                cut = more.find(b"\n")
                data += more if cut < 0 else more[: cut + 1]
                if cut >= 0:
                    break
            yield {"offset": start, "length": len(data), "first_line": line}
            line += data.count(b"\n")
            start += len(data)


def _load_array(path: Path) -> list:
    try:
        with _open_text(path) as f:
            data = json.loads(f.read().decode("utf-8-sig"))  # -sig: a leading BOM is not data
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON array (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise UserError(f"{path}: not readable as {compression(path)} ({exc})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: JSON file holds a {type(data).__name__}, expected an array")
    return data


def read_records(part: dict) -> Iterator[tuple[int, object, bytes | None]]:
    """(record number, decoded value or None, raw bytes when decoding failed)."""
    fmt = part["format"]
    if part.get("stream"):
        yield from _streamed_lines(Path(part["path"]))
    elif fmt == "jsonl":
        with open(part["path"], "rb") as f:
            f.seek(part["offset"])
            data = f.read(part["length"])
        for i, raw in enumerate(data.split(b"\n")):
            if raw.strip():
                yield part["first_line"] + i, None, raw
    elif fmt == "json_array":
        for i, value in enumerate(_load_array(Path(part["path"]))):
            yield 1 + i, value, None
    else:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(part["path"]).read_row_group(part["row_group"])
        for i, value in enumerate(table.to_pylist()):
            yield part["first_line"] + i, value, None


def _streamed_lines(path: Path) -> Iterator[tuple[int, None, bytes]]:
    """The lines of a compressed JSONL file, decompressed a block at a time."""
    line, rest = 1, b""
    try:
        with _open_text(path) as f:
            while block := f.read(STREAM_BYTES):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    if raw.strip():
                        yield line, None, raw
                    line += 1
    except OSError as exc:
        raise UserError(f"{path}: not readable as {compression(path)} ({exc})") from None
    if rest.strip():
        yield line, None, rest
