"""The one abstraction every step of the pipeline shares.

A Stage turns input partitions into output parts. It declares the columns it
needs and makes, and the worker resources its tasks need ({"GPU": 1} for
generation); `core.runner` decides where tasks run. Each task writes its
files atomically and then a completion marker holding its counts and every file
it wrote (path, size, BLAKE2b), so a rerun after a crash skips finished tasks
whose files are intact and never duplicates, loses or trusts damaged rows.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.hashing import config_hash, file_records, folder_fingerprint, table_hash
from core.parquet_io import part_files, recording_writes, write_json_atomic, write_parquet_atomic
from core.worker_cache import return_freed_heap

DONE_DIR = "_done"  # completion markers, one per task


@dataclass(frozen=True)
class Task:
    """One unit of work: `name` names its output part; `params` say what to read."""

    name: str
    params: dict


@dataclass
class PartResult:
    """What a finished task reports; kept in its completion marker and the manifest."""

    name: str
    rows_in: int
    rows_out: int
    rows_rejected: int = 0
    content_hash: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    # Every file the task wrote under the stage folder: {"path" (relative), "bytes",
    # "blake2b"}. None in markers written before files were recorded: not verifiable.
    files: list[dict] | None = None
    # Wall seconds the task ran on its worker: a stage's worker-seconds are their sum.
    seconds: float = 0.0


def write_filtered_part(out: Path, name: str, rows_in: int, kept) -> PartResult:
    """Write the rows a filtering task kept (a pyarrow Table) as part `name` of `out`, and
    report how many it dropped."""
    write_parquet_atomic(kept, out / f"{name}.parquet")
    return PartResult(
        name,
        rows_in,
        kept.num_rows,
        content_hash=table_hash(kept),
        stats={"dropped": rows_in - kept.num_rows},
    )


class Stage(ABC):
    """Base class: subclasses set `name`, `needs`, `makes`, and implement plan/process."""

    name: ClassVar[str] = "stage"
    needs: ClassVar[tuple[str, ...]] = ()
    makes: ClassVar[tuple[str, ...]] = ()
    resources: ClassVar[dict[str, float]] = {}

    def __init__(self, out: str | Path, config: Any = None):
        self.out = Path(out)
        self.config = config

    # -- what subclasses provide ------------------------------------------------
    @abstractmethod
    def plan(self) -> list[Task]:
        """The full, deterministic list of tasks (finished ones included)."""

    @abstractmethod
    def process(self, task: Task) -> PartResult:
        """Run one task on a worker: read, transform, write atomically, count."""

    def input_fingerprints(self) -> list[dict]:
        return []

    def input_folders(self) -> list[Path]:
        """Stage folders this stage reads; the runner refuses one with a missing or
        truncated part rather than read fewer rows."""
        return []

    def summary(self, results: list[PartResult]) -> dict:
        """Stage-specific totals for the manifest (beyond rows in/out/rejected)."""
        return {}

    def work_stages(self) -> list[Stage]:
        """Stages writing work folders inside this one that its tasks read (a shuffle, a
        trained model), in order. `run_stage` runs each first, resumably, unless this
        stage is complete, and `clean_work` drops them once its manifest is written: a
        flow never has to remember the steps."""
        return []

    def clean_work(self) -> None:
        import shutil

        for work in self.work_stages():
            shutil.rmtree(work.out, ignore_errors=True)

    # -- shared machinery -------------------------------------------------------
    def config_dict(self) -> dict:
        if dataclasses.is_dataclass(self.config):
            cfg = dataclasses.asdict(self.config)
        else:
            cfg = dict(self.config) if isinstance(self.config, dict) else {}
        return {"stage": self.name, **cfg}

    @property
    def config_hash(self) -> str:
        return config_hash(self.config_dict())

    @property
    def done_dir(self) -> Path:
        return self.out / DONE_DIR

    def execute(self, task: Task) -> PartResult:
        """What the runner ships to a worker: process, then mark the task done, recording
        every file it wrote so a rerun can tell an intact task from a damaged one."""
        began = time.perf_counter()
        with recording_writes() as written:
            result = self.process(task)
        result.files = file_records(self.out, written)
        result.seconds = round(time.perf_counter() - began, 3)
        write_json_atomic(dataclasses.asdict(result), self.done_dir / f"{task.name}.json")
        return_freed_heap()  # else a worker's RSS stays at its largest task's
        return result


class FolderStage(Stage):
    """A stage reading one stage folder (`pool`): the folder's fingerprint is part of its
    config (a changed input is another configuration), and by default one task per part."""

    def __init__(self, pool: str | Path, out: str | Path, config: Any = None):
        super().__init__(out, config)
        self.pool = Path(pool)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.pool)}

    def input_fingerprints(self) -> list[dict]:
        return [folder_fingerprint(self.pool)]

    def input_folders(self) -> list[Path]:
        return [self.pool]

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.pool)]
