"""Flow: pool files of any shape -> a folder of canonical conversations + quarantine."""

from __future__ import annotations

from pathlib import Path

from core.runner import run_stage
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestConfig, IngestPools


def pool_files(paths) -> list[Path]:
    """The files behind pool paths; a missing one is a UserError (call before connecting)."""
    return expand_inputs([str(p) for p in paths])


def ingest(
    client, files: list[Path], out, config: IngestConfig = IngestConfig(), *, overwrite=False
) -> dict:
    """Run the ingest stage on `files` (from pool_files); returns its manifest."""
    return run_stage(IngestPools(files, out, config), client, overwrite=overwrite)


def ingest_report(manifest: dict, out) -> str:
    lines = [
        f"ingest: {manifest['rows_in']} rows read, {manifest['rows_out']} kept, "
        f"{manifest['rows_rejected']} quarantined -> {out}"
    ]
    for reason, n in sorted(manifest["summary"]["rejected_by_reason"].items()):
        lines.append(f"  quarantined ({reason}): {n}  see {out}/_quarantine/")
    return "\n".join(lines)
