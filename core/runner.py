"""Runs a Stage's pending tasks on a Dask client, with progress, resume and a manifest.

The runner is handed a client; it never chooses a cluster (jobs/ does). Tasks go
through core.submit, so a stage whose `resources` no worker holds fails at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from core.errors import UserError
from core.hashing import combine_hashes, files_problem
from core.output_folder import clear_own, recorded_names, refuse_foreign
from core.parquet_io import remove_temporaries, write_json_atomic
from core.stage import DONE_DIR, PartResult, Stage
from core.submit import run_tasks

log = logging.getLogger(__name__)

STAGE_FILE = "_stage.json"
MANIFEST_FILE = "_manifest.json"


def claim_output(stage: Stage, overwrite: bool) -> None:
    """An output folder belongs to one stage config; refuse to mix two in one folder, and
    never touch files this project did not write (core.output_folder)."""
    marker = stage.out / STAGE_FILE
    if marker.exists():
        previous = json.loads(marker.read_text())
        if previous.get("config_hash") != stage.config_hash:
            if not overwrite:
                raise UserError(
                    f"{stage.out} holds output of a different {stage.name} configuration; "
                    "choose another --out or pass --overwrite"
                )
            clear_own(stage.out, stage_outputs(stage.out))
    else:
        refuse_foreign(stage.out)
    stage.out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(stage.out)
    write_json_atomic({"stage": stage.name, "config_hash": stage.config_hash}, marker)


def stage_outputs(folder: Path) -> set[str]:
    """What a stage wrote in `folder`: the files its markers and manifest record, and
    parts a killed task published before its marker."""
    markers = [folder / MANIFEST_FILE, *(folder / DONE_DIR).glob("*.json")]
    parts = {p.name for p in folder.glob("part-*.parquet")}
    return recorded_names(m for m in markers if m.exists()) | parts


def is_complete(stage: Stage) -> bool:
    """True when the folder holds a finished run of exactly this configuration whose every
    part still has its marker and the files that marker records (sizes and hashes)."""
    path = stage.out / MANIFEST_FILE
    return (
        path.exists()
        and json.loads(path.read_text())["config_hash"] == stage.config_hash
        and folder_problem(stage.out) is None
    )


def folder_problem(folder) -> str | None:
    """Why a stage folder is not a finished run whose files are intact, or None when it is:
    its manifest names its tasks, each must have a marker whose files verify."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.exists():
        return f"{folder} has no {MANIFEST_FILE}"
    for r in json.loads(path.read_text()).get("part_results", []):
        problem = _checked(folder, r["name"])[1]
        if problem:
            return f"{folder}: {r['name']}: {problem}"
    return None


def check_input(folder: Path, stage_name: str) -> None:
    """A finished input folder must still hold every part its markers record, at the size
    recorded (no reading: inputs can be large); else one line, before any task runs."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        return
    for r in json.loads(path.read_text()).get("part_results", []):
        files = r.get("files")
        problem = files_problem(folder, files, hashes=False) if files is not None else None
        if problem:
            raise UserError(
                f"{stage_name}: input {folder} is damaged ({r['name']}: {problem}); rerun the "
                "command that wrote it, which redoes that part"
            )


def _checked(folder, name: str) -> tuple[PartResult | None, str | None]:
    """(the task's marker, why it cannot be trusted, or None when its files are intact)."""
    path = folder / DONE_DIR / f"{name}.json"
    if not path.exists():
        return None, "no marker"
    try:
        result = PartResult(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None, "its marker is unreadable"
    return result, files_problem(folder, result.files)


def _finished(stage: Stage, names: set[str]) -> dict[str, PartResult]:
    """The tasks whose markers hold; a marker whose files are missing or changed is
    discarded with the files it records, so the task is redone, never reported done."""
    done = {}
    for path in stage.done_dir.glob("*.json") if stage.done_dir.exists() else []:
        if path.stem not in names:
            continue
        result, problem = _checked(stage.out, path.stem)
        if problem is None:
            done[path.stem] = result
            continue
        log.warning("%s: redoing %s: %s", stage.name, path.stem, problem)
        for f in (result.files if result else None) or []:
            (stage.out / f["path"]).unlink(missing_ok=True)
        path.unlink()
    return done


def run_stage(stage: Stage, client, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Run what is left of `stage` and write its manifest. Returns the manifest."""
    started = time.time()
    for folder in stage.input_folders():
        check_input(folder, stage.name)
    claim_output(stage, overwrite)
    if not is_complete(stage):
        # Work folders live inside this stage's claimed folder: one of another
        # configuration is stale work of ours, so it is replaced.
        for work in stage.work_stages():
            run_stage(work, client, overwrite=True, progress=progress)
    tasks = stage.plan()
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise RuntimeError(f"{stage.name}: task names are not unique")
    results = _finished(stage, set(names))
    pending = [t for t in tasks if t.name not in results]
    if pending:
        # The folder is not finished until every task is: no manifest may say otherwise.
        (stage.out / MANIFEST_FILE).unlink(missing_ok=True)

    for result in run_tasks(
        client,
        stage.execute,
        [(t,) for t in pending],
        desc=stage.name,
        resources=stage.resources,
        keys=[f"{stage.name}-{stage.config_hash}-{t.name}" for t in pending],
        unit="part",
        done=len(results),
        progress=progress,
    ):
        results[result.name] = result

    ordered = [results[n] for n in names]
    manifest = {
        "stage": stage.name,
        "config": stage.config_dict(),
        "config_hash": stage.config_hash,
        "inputs": stage.input_fingerprints(),
        "parts": len(ordered),
        "resumed_parts": len(tasks) - len(pending),
        "rows_in": sum(r.rows_in for r in ordered),
        "rows_out": sum(r.rows_out for r in ordered),
        "rows_rejected": sum(r.rows_rejected for r in ordered),
        "content_hash": combine_hashes({r.name: r.content_hash for r in ordered}),
        "worker_seconds": round(sum(r.seconds for r in ordered), 3),
        "summary": stage.summary(ordered),
        "part_results": [dataclasses.asdict(r) for r in ordered],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 3),
        # Unix times of this run's start (before claiming the folder) and end, so a
        # benchmark sampling memory can attribute its samples to stages, and the gaps
        # between stages to the driver's own steps.
        "started": round(started, 3),
        "finished": round(time.time(), 3),
    }
    write_json_atomic(manifest, stage.out / MANIFEST_FILE)
    stage.clean_work()
    return manifest
