"""Runs a Stage's pending tasks on a Dask client, with progress, resume and a manifest.

The runner is handed a client; it never chooses a cluster (jobs/ does). Tasks go
through core.submit, so a stage whose `resources` no worker holds fails at once.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from datetime import UTC, datetime

from core.errors import UserError
from core.hashing import combine_hashes
from core.parquet_io import remove_temporaries, write_json_atomic
from core.stage import PartResult, Stage
from core.submit import run_tasks

STAGE_FILE = "_stage.json"
MANIFEST_FILE = "_manifest.json"


def claim_output(stage: Stage, overwrite: bool) -> None:
    """An output folder belongs to one stage config; refuse to mix two in one folder."""
    marker = stage.out / STAGE_FILE
    if marker.exists():
        previous = json.loads(marker.read_text())
        if previous.get("config_hash") != stage.config_hash:
            if not overwrite:
                raise UserError(
                    f"{stage.out} holds output of a different {stage.name} configuration; "
                    "choose another --out or pass --overwrite"
                )
            shutil.rmtree(stage.out)
    elif stage.out.exists() and any(p for p in stage.out.iterdir() if not p.name.startswith("_")):
        if not overwrite:
            raise UserError(
                f"{stage.out} exists and is not a {stage.name} output; pass --overwrite"
            )
        shutil.rmtree(stage.out)
    stage.out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(stage.out)
    write_json_atomic({"stage": stage.name, "config_hash": stage.config_hash}, marker)


def is_complete(stage: Stage) -> bool:
    """True when the folder holds a finished run of exactly this configuration."""
    manifest = stage.out / MANIFEST_FILE
    return (
        manifest.exists() and json.loads(manifest.read_text())["config_hash"] == stage.config_hash
    )


def _finished(stage: Stage, names: set[str]) -> dict[str, PartResult]:
    done = {}
    for path in stage.done_dir.glob("*.json") if stage.done_dir.exists() else []:
        if path.stem in names:
            done[path.stem] = PartResult(**json.loads(path.read_text()))
    return done


def run_stage(stage: Stage, client, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Run what is left of `stage` and write its manifest. Returns the manifest."""
    started = time.time()
    claim_output(stage, overwrite)
    tasks = stage.plan()
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise RuntimeError(f"{stage.name}: task names are not unique")
    results = _finished(stage, set(names))
    pending = [t for t in tasks if t.name not in results]

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
    return manifest
