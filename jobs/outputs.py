"""Checks of the places a job writes (--out, $ARENA_CACHE), made before it connects to a
cluster: a mistake there is one line, not a failure after the work began."""

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
    if not str(out).strip():
        raise UserError("--out is empty; give a folder")
    path = Path(out)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise UserError(f"--out {out}: {place} is a file; give a folder")
            _require_writable(place, f"--out {out}")
            break
    where = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == where or where in source.parents:
            raise UserError(f"--out {out}: holds the input {given}; choose another folder")
    if writes is not None or not (path / STAGE_FILE).exists():
        refuse_foreign(path, writes or ())
    check_cache()  # the other place a job writes


def check_cache() -> None:
    """$ARENA_CACHE (where packaged models unpack) must be a folder, or creatable."""
    from arena_models.local_models import cache_root

    root = cache_root()
    for place in (root, *root.parents):
        if place.exists():
            if not place.is_dir():
                raise UserError(f"ARENA_CACHE={root}: {place} is a file; give a folder")
            _require_writable(place, f"ARENA_CACHE={root}")
            return


def _require_writable(folder: Path, what: str) -> None:
    """Try what the job will do, creating something inside, so a read-only disk is one
    line now rather than a failure after the cluster started."""
    import tempfile

    try:
        Path(tempfile.mkdtemp(prefix=".arena-check-", dir=folder)).rmdir()
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
