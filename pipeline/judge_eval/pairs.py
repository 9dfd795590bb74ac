"""Answer pairs people have labelled, read and checked, and the human label of each.

A pairs file is JSONL, one pair a line (the shape of
../shared/data/judging/llmfao_pairs_dev.jsonl):
    pair_id        integer or string, unique in the file
    prompt         the instruction both answers reply to
    answer_x, answer_y, model_x, model_y (model names optional)
    crowd_votes    {"x": n, "y": n, "tie": n}, counts of people's votes (a label
                   left out counts 0)
    gpt4_verdict   optional: x | y | tie, another judge's recorded verdict
Other fields (prompt_id, prompt_slug, ...) are ignored. A row that breaks a rule
goes to the quarantine list with its line and reason, so nothing is lost
silently; a missing file, or one without a usable row, is a UserError.

Human label: the crowd's plurality. The label (x, y or tie) with strictly the
most votes wins; when the most votes are shared (x level with y, or either of
them level with tie) no side has a majority and the pair is a tie, as the
dataset's README puts it: "a pair whose votes split evenly is a tie".

A recorded-verdicts file (`--recorded FILE`) is JSONL with `pair_id` and
`verdict` (x | y | tie): another judge's verdicts on the same pairs, shown as a
row beside the judge under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserError
from core.schemas import short_hash

LABELS = ("x", "y", "tie")


def human_label(votes: dict[str, int]) -> str:
    """x, y or tie: the label with strictly the most votes; a shared maximum is a tie."""
    counts = {label: votes.get(label, 0) for label in LABELS}
    top = max(counts.values())
    leaders = [label for label, n in counts.items() if n == top]
    return leaders[0] if len(leaders) == 1 else "tie"


def longer_side(answer_x: str, answer_y: str) -> str | None:
    """x or y, whichever answer has more characters; None when they are as long."""
    if len(answer_x) == len(answer_y):
        return None
    return "x" if len(answer_x) > len(answer_y) else "y"


def id_order(pair_id: str) -> tuple:
    """Numeric ids in numeric order (9 before 10), then other ids as text."""
    try:
        return (0, int(pair_id), pair_id)
    except ValueError:
        return (1, 0, pair_id)


@dataclass(frozen=True)
class LabelledPair:
    """One checked pair; `line` is where it was read (1-based)."""

    pair_id: str
    prompt: str
    model_x: str
    answer_x: str
    model_y: str
    answer_y: str
    votes: dict[str, int]
    gpt4_verdict: str | None
    line: int

    @property
    def human(self) -> str:
        return human_label(self.votes)

    @property
    def longer(self) -> str | None:
        return longer_side(self.answer_x, self.answer_y)


@dataclass
class PairSet:
    """The usable pairs of a file in pair_id order, and the rows quarantined with reasons."""

    source: str
    pairs: list[LabelledPair]
    quarantine: list[dict] = field(default_factory=list)
    rows: int = 0  # non-blank lines read

    def limited(self, limit: int | None) -> PairSet:
        """`limit` pairs, a stable sample for quick runs: the first by a hash of pair_id
        (files list pairs prompt by prompt, so the first by id would be one prompt's),
        kept in pair_id order. A larger limit keeps every pair a smaller one chose."""
        if limit is None or limit >= len(self.pairs):
            return self
        ids = sorted((p.pair_id for p in self.pairs), key=short_hash)
        chosen = set(ids[:limit])
        kept = [p for p in self.pairs if p.pair_id in chosen]
        return PairSet(self.source, kept, self.quarantine, self.rows)


@dataclass
class RecordedVerdicts:
    """Another judge's verdicts by pair_id, read from a file (or the pairs' gpt4_verdict)."""

    name: str
    source: str
    verdicts: dict[str, str]
    quarantine: list[dict] = field(default_factory=list)


class _Bad(Exception):
    """A row-level problem: the row goes to quarantine with this message."""


def _rows(path: Path):
    """(line number, parsed object or _Bad) for every non-blank line."""
    if not path.is_file():
        raise UserError(f"{path}: {'a folder, not a file' if path.is_dir() else 'no such file'}")
    with open(path, "rb") as f:  # bytes: one line of bad UTF-8 is that row's problem
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").removeprefix("\ufeff")  # a BOM before line 1
            except UnicodeDecodeError as err:
                yield number, _Bad(f"not UTF-8 (byte {err.start})")
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                yield number, _Bad(f"not valid JSON ({err.msg})")
                continue
            yield number, row if isinstance(row, dict) else _Bad("not a JSON object")


def _pair_id(row: dict) -> str:
    value = row.get("pair_id")
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise _Bad("pair_id must be an integer or a non-empty string")
    return str(value)


def _text(row: dict, key: str, *, required: bool = True, empty: bool = True) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{key} must be a string")
    if not empty and not value.strip():
        raise _Bad(f"{key} is empty")
    return value


def _label(value, key: str) -> str:
    if value not in LABELS:
        raise _Bad(f"{key} {value!r} is not one of x, y, tie")
    return value


def _votes(row: dict) -> dict[str, int]:
    votes = row.get("crowd_votes")
    if not isinstance(votes, dict):
        raise _Bad("crowd_votes must be an object of x / y / tie counts")
    for key, n in votes.items():
        if key not in LABELS:
            raise _Bad(f"crowd_votes: unknown label {key!r} (expected x, y, tie)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _Bad(f"crowd_votes.{key} must be a count >= 0, got {n!r}")
    counts = {label: votes.get(label, 0) for label in LABELS}
    if not sum(counts.values()):
        raise _Bad("crowd_votes: no votes")
    return counts


def _check_pair(row: dict, number: int) -> LabelledPair:
    gpt4 = row.get("gpt4_verdict")
    return LabelledPair(
        pair_id=_pair_id(row),
        prompt=_text(row, "prompt", empty=False),
        model_x=_text(row, "model_x", required=False),
        answer_x=_text(row, "answer_x"),
        model_y=_text(row, "model_y", required=False),
        answer_y=_text(row, "answer_y"),
        votes=_votes(row),
        gpt4_verdict=None if gpt4 is None else _label(gpt4, "gpt4_verdict"),
        line=number,
    )


def _quarantined(source: Path, number: int, row, reason: str) -> dict:
    pair_id = row.get("pair_id") if isinstance(row, dict) else None
    return {"file": str(source), "line": number, "pair_id": pair_id, "reason": reason}


def read_pairs(path: str | Path) -> PairSet:
    """Every usable pair of a pairs file, in pair_id order, and the quarantined rows."""
    path = Path(path)
    pairs: dict[str, LabelledPair] = {}
    quarantine, rows = [], 0
    for number, row in _rows(path):
        rows += 1
        try:
            if isinstance(row, _Bad):
                raise row
            pair = _check_pair(row, number)
            if pair.pair_id in pairs:
                raise _Bad(
                    f"duplicate pair_id {pair.pair_id} (first on line {pairs[pair.pair_id].line})"
                )
        except _Bad as bad:
            quarantine.append(_quarantined(path, number, row, str(bad)))
            continue
        pairs[pair.pair_id] = pair
    if not pairs:
        first = f"; line {quarantine[0]['line']}: {quarantine[0]['reason']}" if quarantine else ""
        raise UserError(
            f"{path}: no usable labelled pairs ({rows} rows, {len(quarantine)} quarantined{first})"
        )
    ordered = sorted(pairs.values(), key=lambda p: id_order(p.pair_id))
    return PairSet(str(path), ordered, quarantine, rows)


def gpt4_recorded(pairs: PairSet) -> RecordedVerdicts | None:
    """The file's own gpt4_verdict column as a recorded judge (None when no pair has one)."""
    verdicts = {p.pair_id: p.gpt4_verdict for p in pairs.pairs if p.gpt4_verdict is not None}
    if not verdicts:
        return None
    return RecordedVerdicts("gpt-4 (recorded)", f"{pairs.source}: gpt4_verdict", verdicts)


def read_recorded(path: str | Path) -> RecordedVerdicts:
    """A file of another judge's verdicts (pair_id, verdict), named after the file."""
    path = Path(path)
    verdicts: dict[str, str] = {}
    lines: dict[str, int] = {}
    quarantine = []
    for number, row in _rows(path):
        try:
            if isinstance(row, _Bad):
                raise row
            pair_id = _pair_id(row)
            verdict = _label(row.get("verdict"), "verdict")
            if pair_id in verdicts:
                raise _Bad(f"duplicate pair_id {pair_id} (first on line {lines[pair_id]})")
        except _Bad as bad:
            quarantine.append(_quarantined(path, number, row, str(bad)))
            continue
        verdicts[pair_id], lines[pair_id] = verdict, number
    if not verdicts:
        raise UserError(
            f"--recorded {path}: no usable verdicts (need pair_id and verdict x | y | tie;"
            f" {len(quarantine)} rows quarantined)"
        )
    return RecordedVerdicts(f"{path.stem} (recorded)", str(path), verdicts, quarantine)
