"""Leaderboards per value of a column (`arena elo --by subset`): the paper's Diverse / Hard /
Mix columns, or one per eval-set cluster.

A battle counts in the group of its row's value and in the whole; a row without a value
counts in the whole only. The Mix set marks a prompt that is in both Diverse and Hard
`both`: it counts in each of the other subsets, as it is in each set, not in a group of
its own. Every group is rated as the whole is (same options, same seed), so the columns
differ by their battles only. A group that cannot be rated (the anchor model absent) is
named in a warning, not an error: the other groups still stand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import UserError
from core.parquet_io import atomic_path, write_text_atomic
from core.schemas import short_hash
from pipeline.ratings.battle_rules import BattleCounts, BattleFilter, classify, column_codes
from pipeline.ratings.leaderboard import (
    Leaderboard,
    RatingOptions,
    build_leaderboard,
    write_leaderboard,
)
from pipeline.ratings.pair_counts import PairCounts

# column -> the value that means "in every other group" (eval-set subsets, Mix's overlap).
SHARED_VALUE = {"subset": "both"}
WHOLE = "all"  # the label of the column over every battle
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}")


@dataclass
class GroupedCounts:
    """Counts of the whole and of each value of one column; `ungrouped`: counted battles
    whose row has no value."""

    total: BattleCounts
    groups: dict[str, BattleCounts] = field(default_factory=dict)
    ungrouped: int = 0

    @classmethod
    def empty(cls) -> GroupedCounts:
        return cls(BattleCounts.empty())

    def merge(self, other: GroupedCounts) -> GroupedCounts:
        groups = dict(self.groups)
        for value, counts in other.groups.items():
            groups[value] = groups[value].merge(counts) if value in groups else counts
        return GroupedCounts(
            self.total.merge(other.total), groups, self.ungrouped + other.ungrouped
        )

    def shared_folded(self, column: str) -> GroupedCounts:
        """The column's shared value (`both` of `subset`) counted in every other group."""
        shared = SHARED_VALUE.get(column)
        if shared not in self.groups or len(self.groups) == 1:
            return self
        extra = self.groups[shared]
        groups = {v: c.merge(extra) for v, c in self.groups.items() if v != shared}
        return GroupedCounts(self.total, groups, self.ungrouped)


def count_grouped(table, filt: BattleFilter, column: str) -> GroupedCounts:
    """The counted battles of one Arrow table, in the whole and per value of `column`."""
    if column not in table.column_names:
        raise UserError(f"--by {column}: no column {column!r} in the battles")
    c = classify(table, filt)
    values, codes = column_codes(table.column(column))
    groups = {}
    for i, value in enumerate(values):
        rows = c.keep & (codes == i)
        if rows.any():
            groups[value] = c.counts(rows)
    return GroupedCounts(c.counts(), groups, int((c.keep & (codes < 0)).sum()))


def ordered_values(values) -> list[str]:
    """Numbers in numeric order (clusters 2 before 10), then text; subsets alphabetically."""

    def key(value: str):
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value)

    return sorted(values, key=key)


@dataclass
class GroupBoards:
    """The leaderboard of the whole and of each group that could be rated."""

    column: str
    whole: Leaderboard
    groups: dict[str, Leaderboard]
    battles: dict[str, int]  # counted battles per group value
    whole_battles: int
    warnings: list[str] = field(default_factory=list)


def rate_groups(
    grouped: GroupedCounts,
    column: str,
    options: RatingOptions,
    whole: Leaderboard | None = None,
    progress=None,
) -> GroupBoards:
    """Fit every group as the whole is fitted. `whole`: the whole's board, when made already."""
    folded = grouped.shared_folded(column)

    def board(counts: BattleCounts, bar=None) -> Leaderboard:
        pairs = PairCounts.from_cells(counts.models, counts.cells, options.bothbad_as_tie)
        return build_leaderboard(pairs, options, progress=bar)

    if whole is None:
        whole = board(folded.total, progress)
    boards, battles, warnings = {}, {}, []
    for value in ordered_values(folded.groups):
        counts = folded.groups[value]
        battles[value] = counts.battles
        try:
            boards[value] = board(counts, progress)
        except UserError as exc:  # e.g. the anchor model never battled in this group
            warnings.append(f"{column}={value}: not rated ({exc})")
            continue
        warnings += [f"{column}={value}: {w}" for w in boards[value].warnings]
    if folded.ungrouped:
        warnings.append(f"{folded.ungrouped} battles have no {column}: counted in {WHOLE} only")
    return GroupBoards(column, whole, boards, battles, folded.total.battles, warnings)


def folder_name(value: str) -> str:
    """A group's folder: the value itself when it is a safe name, else a readable part and a
    hash (two values never share a folder)."""
    if _SAFE.fullmatch(value):
        return value
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("._")[:40] or "value"
    return f"{readable}-{short_hash(value, 4)}"


def side_by_side(boards: GroupBoards) -> list[dict]:
    """One row per model of the whole, best first: {model, cells: {label: rating, lower,
    upper, rank, battles}}, a group's cell missing where the model has no battles there."""
    columns = {**boards.groups, WHOLE: boards.whole}
    cells: dict[str, dict] = {}
    for label, board in columns.items():
        c = board.columns
        for i, model in enumerate(c["model"]):
            cells.setdefault(str(model), {})[label] = {
                "rank": int(c["rank"][i]),
                "rating": float(c["rating"][i]),
                "lower": float(c["lower"][i]),
                "upper": float(c["upper"][i]),
                "battles": int(c["battles"][i]),
            }
    return [{"model": str(m), "cells": cells[str(m)]} for m in boards.whole.columns["model"]]


def side_by_side_markdown(boards: GroupBoards, labels: dict[str, str] | None = None) -> str:
    """The side-by-side table in Markdown: a column per group and one over every battle, each
    cell the rating and its 95% interval; `labels` renames columns (all -> Mix)."""
    labels = labels or {}
    order = [*boards.groups, WHOLE]
    heads = [labels.get(v, v) for v in order]
    lines = [
        "| model | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(order),
    ]
    for row in side_by_side(boards):
        cells = []
        for value in order:
            cell = row["cells"].get(value)
            cells.append(
                "-"
                if cell is None
                else f"{cell['rating']:.1f} ({cell['lower'] - cell['rating']:+.1f} /"
                f" {cell['upper'] - cell['rating']:+.1f})"
            )
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    counted = [boards.battles[v] for v in boards.groups] + [boards.whole_battles]
    lines.append("| battles | " + " | ".join(str(n) for n in counted) + " |")
    return "\n".join(lines) + "\n"


def write_group_boards(boards: GroupBoards, out, extra: dict) -> dict:
    """OUT/by/COLUMN/VALUE/ (every leaderboard file of one group) and OUT/by/COLUMN.md and
    .csv (the side-by-side table); a rerun replaces what an earlier one wrote there.
    Returns what summary.json records of it."""
    import csv
    import shutil
    from pathlib import Path

    root = Path(out) / "by"
    shutil.rmtree(root / boards.column, ignore_errors=True)  # values of an earlier run go
    folders = {}
    for value, board in boards.groups.items():
        folder = root / boards.column / folder_name(value)
        group = {boards.column: value, "battles": boards.battles[value]}
        write_leaderboard(board, folder, {**extra, "group": group})
        folders[value] = str(folder.relative_to(out))
    write_text_atomic(side_by_side_markdown(boards), root / f"{boards.column}.md")
    order = [*boards.groups, WHOLE]
    with atomic_path(root / f"{boards.column}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["model"] + [f"{v}_{k}" for v in order for k in ("rating", "lower", "upper", "battles")]
        )
        for row in side_by_side(boards):
            cells = [row["cells"].get(v) for v in order]
            writer.writerow(
                [row["model"]]
                + [
                    "" if c is None else (round(c[k], 2) if k != "battles" else c[k])
                    for c in cells
                    for k in ("rating", "lower", "upper", "battles")
                ]
            )
    return {
        "column": boards.column,
        "groups": {v: {"battles": n, "folder": folders.get(v)} for v, n in boards.battles.items()},
        "table": f"by/{boards.column}.md",
        "warnings": boards.warnings,
    }
