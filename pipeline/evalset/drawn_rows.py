"""The drawn rows in full (every column of OUT/clustered, embeddings included), read on
the workers: a task per clustered part holding a drawn row, never a scan of the pool in
the driver.

The driver plans from the draws (clusters x k rows, pipeline/evalset/draws.py): each
task is handed its part's drawn row numbers and which draw took each, and writes those
rows, in pool order, with the flags `in_diverse` and `in_candidates`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.hashing import folder_fingerprint, table_hash
from core.parquet_io import part_files, read_folder, write_parquet_atomic
from core.stage import FolderStage, PartResult, Task

FLAGS = ("in_diverse", "in_candidates")


class DrawnRows(FolderStage):
    """OUT/clustered and its draws -> the drawn rows with every column and FLAGS."""

    name = "drawn-rows"

    def __init__(self, clustered: Path, draws: Path, out: Path):
        self.draws = Path(draws)
        super().__init__(clustered, out, {"draws": folder_fingerprint(self.draws)})

    def input_fingerprints(self) -> list[dict]:
        return [*super().input_fingerprints(), folder_fingerprint(self.draws)]

    def input_folders(self) -> list[Path]:
        return [self.pool, self.draws]

    def plan(self) -> list[Task]:
        columns = ["part", "row", "diverse", "candidate"]
        draws = read_folder(self.draws, columns=columns).to_pandas().sort_values(["part", "row"])
        by_part = dict(tuple(draws.groupby("part")))
        return [
            Task(
                path.stem,
                {
                    "path": str(path),
                    "rows": by_part[path.stem].row.tolist(),
                    "diverse": by_part[path.stem].diverse.tolist(),
                    "candidate": by_part[path.stem].candidate.tolist(),
                },
            )
            for path in part_files(self.pool)
            if path.stem in by_part
        ]

    def process(self, task: Task) -> PartResult:
        part = pq.read_table(task.params["path"])
        rows = part.take(pa.array(task.params["rows"], pa.int64()))
        rows = rows.append_column(FLAGS[0], pa.array(task.params["diverse"], pa.bool_()))
        rows = rows.append_column(FLAGS[1], pa.array(task.params["candidate"], pa.bool_()))
        write_parquet_atomic(rows, self.out / f"{task.name}.parquet")
        return PartResult(task.name, part.num_rows, rows.num_rows, content_hash=table_hash(rows))


def drawn_sets(drawn: Path):
    """(Diverse, Hard candidates) as pandas frames with the clustered columns, pool order."""
    rows = read_folder(drawn).to_pandas()
    diverse, candidates = (
        rows[rows[flag]].drop(columns=list(FLAGS)).reset_index(drop=True) for flag in FLAGS
    )
    return diverse, candidates
