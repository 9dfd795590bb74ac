"""IngestPools: raw pool files -> canonical conversation parts + a quarantine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from core.defaults import MAX_CONVERSATION_CHARS
from core.errors import UserError
from core.hashing import file_fingerprint, table_hash
from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, QUARANTINE, prompt_id
from core.stage import PartResult, Stage, Task
from pipeline.ingest.readers import plan_file, read_records, source_name
from pipeline.ingest.shapes import RowRejected, to_conversation

RAW_PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class IngestConfig:
    max_chars: int = field(
        default=MAX_CONVERSATION_CHARS, metadata={"help": "longer conversations are quarantined"}
    )
    chunk_mb: int = field(default=32, metadata={"help": "JSONL bytes per task"})

    def __post_init__(self):
        if self.max_chars < 1 or self.chunk_mb < 1:
            raise UserError(
                f"--max-chars {self.max_chars} / --chunk-mb {self.chunk_mb}: both must be positive"
            )


def _decode(raw: bytes, max_chars: int):
    if len(raw) > 4 * max_chars + 1024:  # JSON escapes can make text longer on disk
        raise RowRejected(f"too long: line of {len(raw)} bytes")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a BOM before the first line
    except UnicodeDecodeError as exc:
        raise RowRejected(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowRejected(f"malformed JSON: {exc.msg} at column {exc.colno}") from None


def _preview(value, raw: bytes | None) -> str:
    if raw is not None:
        return raw[:RAW_PREVIEW_CHARS].decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False, default=str)[:RAW_PREVIEW_CHARS]


class IngestPools(Stage):
    """Reads JSONL / JSON / Parquet pools; every row becomes a conversation or a quarantine entry."""

    name = "ingest"
    makes = tuple(CONVERSATION.names)

    def __init__(self, files: list[Path], out, config: IngestConfig = IngestConfig()):
        super().__init__(out, config)
        self.files = [Path(f) for f in files]

    def input_fingerprints(self) -> list[dict]:
        return [file_fingerprint(f) for f in self.files]

    def config_dict(self) -> dict:
        return {**super().config_dict(), "inputs": self.input_fingerprints()}

    def plan(self) -> list[Task]:
        chunk = self.config.chunk_mb << 20
        tasks = []
        for file_index, path in enumerate(self.files):
            for chunk_index, part in enumerate(plan_file(path, chunk)):
                tasks.append(Task(f"part-{file_index:04d}-{chunk_index:05d}", part))
        return tasks

    def process(self, task: Task) -> PartResult:
        part, max_chars = task.params, self.config.max_chars
        source_file = part["path"]
        source = source_name(source_file)
        rows, rejected = [], []
        for line, value, raw in read_records(part):
            try:
                if raw is not None:
                    value = _decode(raw, max_chars)
                messages, source_id, metadata = to_conversation(value, max_chars)
            except RowRejected as exc:
                rejected.append(
                    {
                        "source_file": source_file,
                        "source_line": line,
                        "reason": str(exc),
                        "raw": _preview(value, raw),
                    }
                )
                continue
            rows.append(
                {
                    "prompt_id": prompt_id(messages),
                    "messages": messages,
                    "source": source,
                    "source_id": source_id,
                    "source_file": source_file,
                    "source_line": line,
                    "metadata": metadata,
                }
            )
        table = pa.Table.from_pylist(rows, schema=CONVERSATION)
        write_parquet_atomic(table, self.out / f"{task.name}.parquet")
        if rejected:
            quarantine = pa.Table.from_pylist(rejected, schema=QUARANTINE)
            write_parquet_atomic(quarantine, self.out / "_quarantine" / f"{task.name}.parquet")
        reasons: dict[str, int] = {}
        for r in rejected:
            kind = r["reason"].split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        return PartResult(
            name=task.name,
            rows_in=len(rows) + len(rejected),
            rows_out=len(rows),
            rows_rejected=len(rejected),
            content_hash=table_hash(table),
            stats={"rejected_by_reason": reasons, "source": source},
        )

    def summary(self, results: list[PartResult]) -> dict:
        by_source: dict[str, dict[str, int]] = {}
        reasons: dict[str, int] = {}
        for r in results:
            counts = by_source.setdefault(r.stats["source"], {"rows": 0, "rejected": 0})
            counts["rows"] += r.rows_out
            counts["rejected"] += r.rows_rejected
            for k, v in r.stats["rejected_by_reason"].items():
                reasons[k] = reasons.get(k, 0) + v
        return {"by_source": by_source, "rejected_by_reason": reasons}
