"""What counts as a battle: the rows of one Arrow table classified with Arrow and numpy.

Accepted columns: `model_a`, `model_b`, `winner` in model_a | model_b | tie |
tie (bothbad) (ours and FastChat's; a null winner is a judge error), or
`left`, `right`, `winner` in left | right | tie (crowd votes such as LLMFAO's).
A row is filtered out (judge, models, dates), dropped with a reason (missing
model name, judge error, unknown winner value, a model battling itself), or
counted. Models and winners are dictionary-encoded, so a million rows cost a few
vectorised passes over integer codes: no Python per row, no pandas, no cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from core.errors import UserError

OUTCOMES = ("model_a", "model_b", "tie", "tie (bothbad)")
LEFT_RIGHT = {"left": "model_a", "right": "model_b", "tie": "tie"}
STYLE_COLUMNS = ("answer_a", "answer_b", "len_a", "len_b")
FILTER_COLUMNS = ("judge", "tstamp", "date")


@dataclass(frozen=True)
class BattleFilter:
    judges: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # keep battles where both models are listed
    since: str | None = None  # ISO date, on a `tstamp` (unix seconds) or `date` column
    until: str | None = None


def battle_columns(names) -> tuple[str, str]:
    """The (first, second) model columns a table with these column names battles on."""
    names = set(names)
    if {"model_a", "model_b", "winner"} <= names:
        return "model_a", "model_b"
    if {"left", "right", "winner"} <= names:
        return "left", "right"
    raise UserError(
        "no battle columns; need model_a, model_b, winner (or left, right, winner); "
        f"found {', '.join(sorted(map(str, names))) or 'none'}"
    )


@dataclass
class BattleCounts:
    """cells[a, b, k]: battles of models[a] (first) against models[b] with outcome OUTCOMES[k]."""

    models: list[str]
    cells: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)
    filtered: int = 0

    @classmethod
    def empty(cls) -> BattleCounts:
        return cls([], np.zeros((0, 0, len(OUTCOMES)), dtype=np.int64))

    @property
    def battles(self) -> int:
        return int(self.cells.sum())

    def merge(self, other: BattleCounts) -> BattleCounts:
        models = sorted(set(self.models) | set(other.models))
        index = {m: i for i, m in enumerate(models)}
        cells = np.zeros((len(models), len(models), len(OUTCOMES)), dtype=np.int64)
        for part in (self, other):
            at = np.array([index[m] for m in part.models], dtype=np.int64)
            cells[np.ix_(at, at)] += part.cells
        dropped = dict(self.dropped)
        for reason, n in other.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
        return BattleCounts(models, cells, dropped, self.filtered + other.filtered)


@dataclass
class Classified:
    """Every row of a table as codes: `keep` marks the rows that count."""

    models: list[str]
    a: np.ndarray  # model index of the first model, -1 when missing
    b: np.ndarray
    outcome: np.ndarray  # index into OUTCOMES, -1 when none
    keep: np.ndarray
    dropped: dict[str, int]
    filtered: int

    def counts(self, rows: np.ndarray | None = None) -> BattleCounts:
        """The counted battles, or those among `rows` (a mask: one group's rows)."""
        n, k = len(self.models), len(OUTCOMES)
        keep = self.keep if rows is None else self.keep & rows
        key = (self.a[keep] * n + self.b[keep]) * k + self.outcome[keep]
        cells = np.bincount(key, minlength=n * n * k).reshape(n, n, k)
        # Only models with a counted battle: a filtered-out or dropped row names no model.
        used = np.flatnonzero(cells.sum(axis=(1, 2)) + cells.sum(axis=(0, 2)))
        models = [self.models[i] for i in used]
        if rows is not None:  # a group's counts: drops and filters are the whole's to report
            return BattleCounts(models, cells[np.ix_(used, used)])
        return BattleCounts(models, cells[np.ix_(used, used)], self.dropped, self.filtered)


def column_codes(column: pa.ChunkedArray) -> tuple[list, np.ndarray]:
    """(dictionary values as text, per-row code with -1 for null) of a column."""
    if not pa.types.is_dictionary(column.type):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.string())
        import pyarrow.compute as pc  # (only here: its import is a tenth of a second)

        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries() if column.num_chunks > 1 else column
    if column.num_chunks == 0:
        return [], np.zeros(0, dtype=np.int64)
    values = column.chunk(0).dictionary.cast(pa.string()).to_pylist()
    return values, np.concatenate([_indices(c.indices) for c in column.chunks])


def _indices(array: pa.Array) -> np.ndarray:
    """Dictionary indices as int64, null as -1, read from the buffers: pyarrow's to_numpy,
    scalars and fill_null each import pandas (half a second of `arena elo`'s start)."""
    validity, data = array.buffers()[:2]
    start, n = array.offset, len(array)
    dtype = np.dtype(f"int{array.type.bit_width}")
    values = np.frombuffer(data, dtype=dtype, count=start + n)[start:].astype(np.int64)
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        values[bits[start : start + n] == 0] = -1
    return values


def _in(values: list, codes: np.ndarray, wanted) -> np.ndarray:
    hit = np.array([v in wanted for v in values] + [False], dtype=bool)
    return hit[codes]  # code -1 reads the trailing False


def _date_keep(table: pa.Table, filt: BattleFilter) -> np.ndarray:
    import pandas as pd  # only for date filters: pandas parses every date format people write

    named = [c for c in ("tstamp", "date") if c in table.column_names]
    kind = table.column(named[0]).type if named else None
    if kind is not None and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        # Already a time (Arrow timestamp or date); one without a zone is read as UTC.
        when = pd.to_datetime(table.column(named[0]).to_pandas(), utc=True)
    elif "tstamp" in table.column_names:
        numbers = pd.to_numeric(table.column("tstamp").to_pandas(), errors="coerce")
        when = pd.to_datetime(numbers, unit="s", utc=True)
    elif "date" in table.column_names:
        when = pd.to_datetime(table.column("date").to_pandas(), errors="coerce", utc=True)
    else:
        raise UserError("--since/--until need a `tstamp` (unix seconds) or `date` column")
    keep = pd.Series(True, index=when.index)
    if filt.since:
        keep &= when >= pd.Timestamp(filt.since, tz="UTC")
    if filt.until:
        keep &= when < pd.Timestamp(filt.until, tz="UTC")
    return keep.fillna(False).to_numpy(dtype=bool)


def classify(table: pa.Table, filt: BattleFilter = BattleFilter()) -> Classified:
    first, second = battle_columns(table.column_names)
    names_a, codes_a = column_codes(table.column(first))
    names_b, codes_b = column_codes(table.column(second))
    models = sorted(set(names_a) | set(names_b))
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[m] for m in names_a] + [-1], dtype=np.int64)[codes_a]
    b = np.array([index[m] for m in names_b] + [-1], dtype=np.int64)[codes_b]

    winners, codes_w = column_codes(table.column("winner"))
    spelled = LEFT_RIGHT if first == "left" else {}
    outcome_of = [
        OUTCOMES.index(spelled.get(w, w)) if spelled.get(w, w) in OUTCOMES else -2 for w in winners
    ]
    outcome = np.array(outcome_of + [-1], dtype=np.int64)[codes_w]  # -1 none, -2 unknown

    keep = np.ones(table.num_rows, dtype=bool)
    if filt.judges:
        if "judge" not in table.column_names:
            raise UserError("--judge needs a `judge` column in every battle file")
        keep &= _in(*column_codes(table.column("judge")), set(filt.judges))
    if filt.models:
        listed = np.array([m in set(filt.models) for m in models] + [False], dtype=bool)
        keep &= listed[a] & listed[b]
    if filt.since or filt.until:
        keep &= _date_keep(table, filt)
    filtered = int((~keep).sum())

    dropped: dict[str, int] = {}
    for reason, mask in (
        ("missing model name", (a < 0) | (b < 0)),
        ("judge error (no winner)", outcome == -1),
        ("unknown winner value", outcome == -2),
        ("model battles itself", a == b),
    ):
        hit = keep & mask
        if reason == "unknown winner value":
            for code, n in enumerate(np.bincount(codes_w[hit], minlength=len(winners))):
                if n:
                    dropped[f"{reason} {winners[code]!r}"] = int(n)
        elif hit.any():
            dropped[reason] = int(hit.sum())
        keep &= ~mask
    return Classified(models, a, b, outcome, keep, dropped, filtered)


def kept_battles(table: pa.Table, filt: BattleFilter = BattleFilter()):
    """The counted battles in row order, as pandas (model_a, model_b, outcome [+ style columns]):
    for online Elo and style control, which need battles rather than counts."""
    import pandas as pd

    c = classify(table, filt)
    names, outcomes = np.array(c.models, dtype=object), np.array(OUTCOMES, dtype=object)
    rows = np.flatnonzero(c.keep)
    frame = pd.DataFrame(
        {
            "model_a": names[c.a[rows]],
            "model_b": names[c.b[rows]],
            "outcome": outcomes[c.outcome[rows]],
        }
    )
    for column in STYLE_COLUMNS:
        if column in table.column_names:
            frame[column] = table.column(column).take(pa.array(rows)).to_pandas()
    return frame
