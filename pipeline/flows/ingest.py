"""Flow: pool files of any shape -> a folder of canonical conversations + quarantine."""

from __future__ import annotations

from pathlib import Path

from core.runner import claim_output, run_stage
from pipeline.ingest.readers import check_file, expand_inputs
from pipeline.ingest.stage import IngestConfig, IngestPools


def pool_files(paths) -> list[Path]:
    """The files behind pool paths; a missing or unreadable one is a UserError (call before
    connecting)."""
    files = expand_inputs([str(p) for p in paths])
    for path in files:
        check_file(path)
    return files


def claim_ingest_output(files, out, config: IngestConfig, *, overwrite=False) -> None:
    """Refuse (or, overwriting, clear) an --out of another configuration before connecting."""
    claim_output(IngestPools(files, out, config), overwrite)


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
