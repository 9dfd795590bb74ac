"""Fingerprints that make outputs comparable across runs: config, inputs and content."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa


def config_hash(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_fingerprint(path: str | os.PathLike) -> dict:
    """Path, size and mtime: cheap, and enough to notice an input that changed."""
    st = os.stat(path)
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def table_hash(table: pa.Table) -> str:
    """Hash of a table's rows and schema (Arrow IPC bytes are deterministic)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def combine_hashes(named: dict[str, str]) -> str:
    """One hash for a folder from its parts' hashes, independent of completion order."""
    lines = "\n".join(f"{name}:{digest}" for name, digest in sorted(named.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def folder_fingerprint(folder: Path) -> dict:
    """A stage output is fingerprinted by its manifest's content hash when it has one."""
    manifest = folder / "_manifest.json"
    if manifest.exists():
        return {
            "path": str(folder),
            "content_hash": json.loads(manifest.read_text())["content_hash"],
        }
    return {
        "path": str(folder),
        "files": [file_fingerprint(p) for p in sorted(folder.glob("*.parquet"))],
    }
