"""Checks of the places a job writes (--out, $ARENA_CACHE), made before it connects to a
cluster: a mistake there is one line, not a failure after the work began."""

from __future__ import annotations

from pathlib import Path

from arena_models.local_models import cache_root
from core.errors import UserError
from core.output_folder import claim, claimed, refuse_foreign
from core.runner import STAGE_FILE


def check_out(out, *inputs, writes: tuple[str, ...] | None = None) -> None:
    """--out must be a folder or not exist yet (under no file), and neither be an input nor
    hold one: a stage rewrites its folder, so writing over its own input would lose it.
    Nor may it hold files this project did not write: `writes` names what the command
    writes there, which are its own only in a folder it claimed before (None: one
    stage's folder, whose markers say what it wrote)."""
    if not str(out).strip():
        raise UserError("--out is empty; give a folder")
    path = Path(out)
    _require_writable_folder(path, f"--out {out}")
    where = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == where or where in source.parents:
            raise UserError(f"--out {out}: holds the input {given}; choose another folder")
        if source in where.parents:  # a rerun would read the output as input
            raise UserError(f"--out {out}: is inside the input {given}; choose another folder")
    if writes is not None:
        refuse_foreign(path, writes if claimed(path) else ())
    elif not (path / STAGE_FILE).exists():
        refuse_foreign(path)
    check_cache()  # the other place a job writes


def claim_out(out, writes: tuple[str, ...]) -> None:
    """Mark --out, once every check passed, as the folder this job writes its fixed names
    into, so that a rerun finds them its own (core.output_folder.OWNER_FILE)."""
    claim(Path(out), writes)


def check_cache_folder(cache, flag: str = "--cache") -> None:
    """A cache folder the user named (None: the default under --out) is, or can become, a
    writable folder."""
    if cache is not None:
        _require_writable_folder(Path(cache), f"{flag} {cache}")


def check_cache() -> None:
    """$ARENA_CACHE (where packaged models unpack) must be a folder, or creatable."""
    root = cache_root()
    _require_writable_folder(root, f"ARENA_CACHE={root}")


def _require_writable_folder(path: Path, what: str) -> None:
    """`path` is a folder, or can become one: its nearest existing ancestor is a folder
    we can write in. Tried by creating something there, so a read-only disk is one line
    now rather than a failure after the cluster started."""
    import tempfile

    place = next(p for p in (path, *path.parents) if p.exists())
    if not place.is_dir():
        raise UserError(f"{what}: {place} is a file; give a folder")
    try:
        Path(tempfile.mkdtemp(prefix=".arena-check-", dir=place)).rmdir()
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {place} ({exc.strerror or exc})") from None
