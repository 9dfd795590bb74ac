"""The embedding map's sample of the pool (report.plot_embedding_map), read on the workers.

The sample is seeded and uniform over the pool's rows (`kmeans.sampled_rows`, the rows
`kmeans.sample_vectors` reads). Read in the driver, 20k rows of 10M spread over ~10k
parts of 1,024 rows would mean reading about every part's vectors; here the driver chooses the rows from the
parts' row counts (Parquet footers) and a task per part holding a sampled row writes
their vectors (OUT/map_sample), which the driver reads: MAP_ROWS vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.hashing import table_hash
from core.parquet_io import part_files, read_folder, write_parquet_atomic
from core.stage import FolderStage, PartResult, Task
from pipeline.evalset.embed import vectors_of
from pipeline.evalset.kmeans import sampled_rows

MAP_ROWS, MAP_SEED = 20_000, 0  # pool rows on the map


class MapSample(FolderStage):
    """OUT/clustered -> the sampled rows' vectors (`embedding`), a task per part holding one."""

    name = "map-sample"
    needs = ("embedding",)

    def __init__(self, clustered: Path, out: Path, rows: int = MAP_ROWS, seed: int = MAP_SEED):
        super().__init__(clustered, out, {"rows": rows, "seed": seed})

    def plan(self) -> list[Task]:
        parts = part_files(self.pool)
        counts = [pq.ParquetFile(p).metadata.num_rows for p in parts]
        chosen = sampled_rows(counts, self.config["rows"], self.config["seed"])
        return [
            Task(path.stem, {"path": str(path), "rows": rows.tolist()})
            for path, rows in zip(parts, chosen)
            if len(rows)
        ]

    def process(self, task: Task) -> PartResult:
        part = pq.read_table(task.params["path"], columns=list(self.needs))
        sample = part.take(pa.array(task.params["rows"], pa.int64()))
        write_parquet_atomic(sample, self.out / f"{task.name}.parquet")
        return PartResult(
            task.name, part.num_rows, sample.num_rows, content_hash=table_hash(sample)
        )


def map_vectors(folder: Path) -> np.ndarray:
    """The sample's vectors, (rows, dim) float32, in pool order."""
    return np.asarray(vectors_of(read_folder(folder)), dtype=np.float32)
