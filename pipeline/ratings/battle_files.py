"""Battle files of any origin -> outcome counts per model pair (rules in battle_rules.py).

A file is read in pieces (a few row groups of a Parquet file, a whole CSV or
JSONL file) with only the columns the rules need, as Arrow batches, so a
piece's memory is bounded by its batch size, whatever the file's. Each piece is
reduced to a models x models x outcomes count array; drops and filters are
counted beside it, never lost. Without a client the pieces are counted in this
process (no cluster to start: a million battles take well under a second);
with one, each piece is a task on the workers and only the counts travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from core.submit import run_tasks
from pipeline.ratings.battle_rules import (
    FILTER_COLUMNS,
    STYLE_COLUMNS,
    BattleCounts,
    BattleFilter,
    battle_columns,
    classify,
    kept_battles,
)
from pipeline.ratings.groups import GroupedCounts, count_grouped

BATCH_ROWS = 1 << 20  # rows per Arrow batch: ~30 MB of codes at most
PIECE_ROWS = 4 << 20  # rows per task on a cluster (whole row groups)
TEXT_COLUMNS = ("model_a", "model_b", "left", "right", "winner", "judge")
TEXTUAL = (*TEXT_COLUMNS, "answer_a", "answer_b", "date")  # JSON: strings in every block
# Inputs up to this size are counted in the calling process: starting a cluster (1-2 s)
# costs more than reading them (a million battles: ~2 MB of Parquet, well under a second).
ONE_PROCESS_BYTES = 256 << 20
ONE_PROCESS_FILES = 8
FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}


@dataclass(frozen=True)
class Piece:
    """Rows of one battle file: `row_groups` of a Parquet file (None: the whole file)."""

    path: str
    kind: str
    columns: tuple[str, ...]  # the columns to read
    row_groups: tuple[int, ...] | None = None
    by: str | None = None  # count per value of this column too (pipeline/ratings/groups.py)


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():  # a Parquet folder: its rows are the part files, not the `_` side outputs
        files = sorted(
            p
            for p in path.rglob("*.parquet")
            if not any(s.startswith(("_", ".")) for s in p.relative_to(path).parts)
        )
        if not files:
            raise UserError(f"{path}: no Parquet files in this folder")
        return files
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file")
    if path.suffix.lower() not in FORMATS:
        raise UserError(
            f"{path}: unknown battle file format {path.suffix.lower()!r}; "
            "use .parquet, .csv or .jsonl"
        )
    return [path]


def _csv_options(names):
    import pyarrow as pa
    import pyarrow.csv as pv

    # Only an empty field is missing: a model called "NA" is a model.
    return pv.ConvertOptions(
        column_types={c: pa.string() for c in TEXT_COLUMNS},
        null_values=[""],
        strings_can_be_null=True,
        include_columns=names,
    )


def _batches(piece: Piece, schema_only: bool = False):
    """Arrow record batches of a piece (or, with schema_only, its schema)."""
    import pyarrow as pa

    if piece.kind == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(piece.path)
        if schema_only:
            return schema
        text = [
            c
            for c in piece.columns
            if pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)
        ]
        file = pq.ParquetFile(piece.path, read_dictionary=text)
        return file.iter_batches(BATCH_ROWS, piece.row_groups, columns=list(piece.columns))
    if piece.kind == "csv":
        import pyarrow.csv as pv

        reader = pv.open_csv(
            piece.path,
            # Standard CSV: a quoted cell may span lines (answer texts do).
            parse_options=pv.ParseOptions(newlines_in_values=True),
            convert_options=_csv_options(list(piece.columns) or None),
        )
        return reader.schema if schema_only else iter(reader)
    if _json_array(piece.path):
        # A JSON array (FastChat's clean_battle files), not JSON Lines: read whole, with
        # every column's type from all its rows.
        import json

        rows = json.loads(Path(piece.path).read_text(encoding="utf-8-sig"))
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise ValueError("expected a JSON array of battle objects")
        table = pa.Table.from_struct_array(pa.array(rows))
        return table.schema if schema_only else iter(table.select(list(piece.columns)).to_batches())
    import pyarrow.json as pj

    first = pj.open_json(piece.path).schema  # from the first block
    if schema_only:
        return first
    # Only the piece's columns are parsed (a later block's other fields cannot fail it),
    # with types fixed from the first block: text stays text though the first block held
    # only nulls, and numbers (tstamp, len_a) are floats; a column of numbers where names go
    # (model ids 1, 2, ...) is read as names by the rules.
    fields = []
    for c in (c for c in piece.columns if c in first.names):
        kind = first.field(c).type
        if c in TEXTUAL and (pa.types.is_string(kind) or pa.types.is_null(kind)):
            kind = pa.string()
        elif pa.types.is_null(kind) or (pa.types.is_integer(kind) and c not in TEXTUAL):
            kind = pa.float64()  # a later 1.5 must not fail a column of ints
        fields.append(pa.field(c, kind))
    options = pj.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    return (b.select(list(piece.columns)) for b in pj.open_json(piece.path, parse_options=options))


def _json_array(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(256).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def _read(piece: Piece, what):
    """what(table) for each batch of the piece; a reader's failure is the file's, one line."""
    import pyarrow as pa

    def unreadable(exc: Exception) -> UserError:
        return UserError(f"{piece.path}: cannot read battles ({type(exc).__name__}: {exc})")

    try:
        batches = iter(_batches(piece))
    except Exception as exc:  # noqa: BLE001 - any reader error means the file is unreadable
        raise unreadable(exc) from None
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - as above, midway through the file
            raise unreadable(exc) from None
        try:
            result = what(pa.Table.from_batches([batch]))
        except UnicodeDecodeError as exc:  # Arrow's JSON reader leaves bad UTF-8 in strings
            raise unreadable(exc) from None
        yield result


def fits_one_process(paths) -> bool:
    """Whether the battle files are few and small enough to count without a cluster."""
    files = [f for p in paths if Path(p).exists() for f in _files(Path(p))]
    return (
        len(files) <= ONE_PROCESS_FILES
        and sum(f.stat().st_size for f in files) <= ONE_PROCESS_BYTES
    )


def plan_pieces(
    paths, filt: BattleFilter, *, style: bool = False, by: str | None = None
) -> list[Piece]:
    """The pieces of every file, checked up front: a bad file is one line before any work.
    `by`: a column every file must have, whose values group the counts."""
    pieces = []
    for given in paths:
        for path in _files(Path(given)):
            kind = FORMATS[path.suffix.lower()]
            try:
                schema = _batches(Piece(str(path), kind, ()), schema_only=True)
            except Exception as exc:  # noqa: BLE001 - unreadable, whatever the reader says
                raise UserError(
                    f"{path}: cannot read battles ({type(exc).__name__}: {exc})"
                ) from None
            try:
                first, second = battle_columns(schema.names)
            except UserError as exc:
                raise UserError(f"{path}: {exc}") from None
            if filt.judges and "judge" not in schema.names:
                raise UserError("--judge needs a `judge` column in every battle file")
            if by is not None:
                _check_group_column(path, schema, by)
            extra = FILTER_COLUMNS + (STYLE_COLUMNS if style else ())
            columns = (first, second, "winner", *(c for c in extra if c in schema.names))
            if by is not None and by not in columns:
                columns += (by,)
            pieces += _split(Piece(str(path), kind, columns, by=by))
    return pieces


def _check_group_column(path: Path, schema, by: str) -> None:
    import pyarrow as pa

    if by not in schema.names:
        raise UserError(
            f"{path}: --by {by}: no such column (columns: {', '.join(map(str, schema.names))})"
        )
    kind = schema.field(by).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):
        raise UserError(f"{path}: --by {by}: a column of {kind}; expected text or integers")


def _split(piece: Piece) -> list[Piece]:
    if piece.kind != "parquet":
        return [piece]
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(piece.path).metadata
    groups, rows, pieces = [], 0, []
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= PIECE_ROWS:
            pieces.append(Piece(piece.path, piece.kind, piece.columns, tuple(groups), piece.by))
            groups, rows = [], 0
    if groups or not pieces:
        pieces.append(Piece(piece.path, piece.kind, piece.columns, tuple(groups), piece.by))
    return pieces


def count_piece(piece: Piece, filt: BattleFilter) -> BattleCounts | GroupedCounts:
    """The piece's counts; per value of `piece.by` too when it names a column."""
    if piece.by is not None:
        total = GroupedCounts.empty()
        for counts in _read(piece, lambda table: count_grouped(table, filt, piece.by)):
            total = total.merge(counts)
        return total
    total = BattleCounts.empty()
    for counts in _read(piece, lambda table: classify(table, filt).counts()):
        total = total.merge(counts)
    return total


def _collect_piece(i: int, piece: Piece, filt: BattleFilter):
    import pandas as pd

    frames = list(_read(piece, lambda table: kept_battles(table, filt)))
    return i, pd.concat(frames, ignore_index=True) if frames else None


def aggregate_battles(
    paths, filt: BattleFilter, client=None, progress: bool = True, by: str | None = None
) -> BattleCounts | GroupedCounts:
    """The summed counts of every battle file: in this process, or on the client's workers.
    With `by`, a GroupedCounts: the whole and each value of that column."""
    pieces = plan_pieces(paths, filt, by=by)
    if client is None:
        results = [count_piece(p, filt) for p in pieces]
    else:
        args = [(p, filt) for p in pieces]
        results = run_tasks(
            client, count_piece, args, desc="count battles", unit="piece", progress=progress
        )
    total = GroupedCounts.empty() if by is not None else BattleCounts.empty()
    for counts in results:
        total = total.merge(counts)
    return total


def collect_battles(paths, filt: BattleFilter, client=None, progress: bool = True):
    """Every counted battle, in file order, in one pandas frame: for online Elo and style
    control only, which need battles rather than counts."""
    import pandas as pd

    pieces = plan_pieces(paths, filt, style=True)
    args = [(i, p, filt) for i, p in enumerate(pieces)]
    if client is None:
        results = [_collect_piece(*a) for a in args]
    else:
        results = run_tasks(
            client, _collect_piece, args, desc="collect battles", unit="piece", progress=progress
        )
    frames = [frame for _, frame in sorted(results, key=lambda r: r[0]) if frame is not None]
    return pd.concat(frames, ignore_index=True)
