"""TakeSlice: slice Dk of N of a (decontaminated) conversation folder, by a seeded hash
of `prompt_id`. A row's slice depends on its own id only, so slices are disjoint, cover
the pool, and a grown pool keeps every old row in the slice it had."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.parquet_io import require_columns
from core.schemas import short_hash
from core.stage import FolderStage, PartResult, Task, write_filtered_part


@dataclass(frozen=True)
class SliceConfig:
    slices: int = 9  # the paper's D1..D9
    index: int = 1  # which slice, 1-based
    seed: int = 0

    def __post_init__(self):
        if self.slices < 1 or not 1 <= self.index <= self.slices:
            raise UserError(
                f"slice {self.index} of {self.slices}: expected 1 <= index <= slices, slices >= 1"
            )


def slice_of(prompt_id: str, slices: int, seed: int = 0) -> int:
    """The 1-based slice a prompt belongs to."""
    return int(short_hash(f"{seed}\x00{prompt_id}", 8), 16) % slices + 1


class TakeSlice(FolderStage):
    name = "flywheel-slice"
    needs = ("prompt_id",)

    def process(self, task: Task) -> PartResult:
        table = pq.read_table(task.params["path"])
        require_columns(table.schema, self.needs, task.params["path"])
        cfg = self.config
        mine = [
            slice_of(pid, cfg.slices, cfg.seed) == cfg.index
            for pid in table.column("prompt_id").to_pylist()
        ]
        return write_filtered_part(
            self.out, task.name, table.num_rows, table.filter(pa.array(mine, pa.bool_()))
        )
