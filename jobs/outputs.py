"""Checks of --out that every job makes before it connects to a cluster."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserError
from core.output_folder import refuse_foreign
from core.runner import STAGE_FILE


def check_out(out, *inputs, writes: tuple[str, ...] | None = None) -> None:
    """--out must be a folder or not exist yet (under no file), and neither be an input nor
    hold one: a stage rewrites its folder, so writing over its own input would lose it.
    Nor may it hold files this project did not write: `writes` names what the command
    writes there (None: one stage's folder, whose markers say what it wrote)."""
    path = Path(out)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise UserError(f"--out {out}: {place} is a file; give a folder")
            break
    where = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == where or where in source.parents:
            raise UserError(f"--out {out}: holds the input {given}; choose another folder")
    if writes is not None or not (path / STAGE_FILE).exists():
        refuse_foreign(path, writes or ())
