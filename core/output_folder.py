"""Who owns an output folder. `--overwrite` replaces this project's outputs, never a
user's files: a folder is cleared only of what the project wrote, and a folder that
holds anything else is refused with the names of those files, overwrite or not.

What the project writes in a folder, it names: bookkeeping and work folders start with
"_", half-written files with "." (core.parquet_io), and every other file is recorded
by the marker of the task that wrote it (a stage's `_done/*.json`, a model's
`_training.json`) or is one of a job's fixed output names (`report.md`, `pool`, ...) in
a folder the job claimed (`OWNER_FILE`): a user's own `leaderboard.csv` in a folder of
theirs stays theirs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path

from core.errors import UserError

BOOKKEEPING = ("_", ".")
SHOWN = 5  # foreign names quoted in a refusal
OWNER_FILE = "_arena_outputs.json"  # a job with fixed output names wrote into this folder


def claimed(folder: Path) -> bool:
    return (Path(folder) / OWNER_FILE).is_file()


def claim(folder: Path, names: Iterable[str]) -> None:
    """Mark `folder` (made if need be) as one a job writes its fixed `names` into."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not claimed(folder):
        (folder / OWNER_FILE).write_text(json.dumps({"names": sorted(names)}, indent=1) + "\n")


def recorded_names(markers: Iterable[Path]) -> set[str]:
    """The top-level names of the files the given marker files record (their `files`)."""
    names = set()
    for marker in markers:
        try:
            data = json.loads(Path(marker).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        records = list(data.get("files") or [])
        for result in data.get("part_results") or []:  # a manifest: every task's files
            records += result.get("files") or []
        names.update(Path(r["path"]).parts[0] for r in records if r.get("path"))
    return names


def foreign_entries(folder: Path, ours: Iterable[str] = ()) -> list[str]:
    """The entries of `folder` the project did not write: not bookkeeping, and matching
    none of `ours` (names, or patterns such as "iteration-*")."""
    folder, ours = Path(folder), set(ours)
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(BOOKKEEPING)
        and p.name not in ours
        and not any(fnmatchcase(p.name, pattern) for pattern in ours)
    )


def refuse_foreign(folder: Path, ours: Iterable[str] = ()) -> None:
    """One line naming what in `folder` the project did not write, if anything."""
    foreign = foreign_entries(folder, ours)
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (
            f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        )
        raise UserError(
            f"{folder} holds files this project did not write ({shown}); it never deletes or "
            "mixes into them, --overwrite included: choose another --out"
        )


def clear_own(folder: Path, ours: Iterable[str]) -> None:
    """Delete what the project wrote in `folder` (its bookkeeping and `ours`), after
    refusing if anything else is there."""
    folder, ours = Path(folder), set(ours)
    refuse_foreign(folder, ours)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
