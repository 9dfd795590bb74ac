"""The Diverse and Hard-candidate draws, on the workers: the driver never holds the pool.

A draw keeps the first rows of each cluster by a seeded key (select.py). Two steps, in
the shape of exact dedup's shuffle; DrawPerCluster runs the first as its work stage:

1. KeyedRows: a task per part of OUT/clustered computes each row's two keys and keeps,
   per cluster, only the rows that could be drawn: its own first `diverse_per_cluster`
   by the diverse key and first `candidates_per_cluster` by the hard key (a cluster's
   first k in the pool are among its parts' first k). They go, with the row count of
   their cluster in the part, to the bucket of their cluster
   (`OUT/draws/_keyed/b-NNNNN/<part>.parquet`).
2. DrawPerCluster: a task per bucket draws its clusters' first k among those rows and
   writes the draws (`OUT/draws/part-NNNNN.parquet`: prompt_id, cluster, pool position,
   which draw) and its clusters' sizes (`OUT/draws/_sizes/part-NNNNN.parquet`).

Why the shuffle, not one merge task: clustered parts are an embed task's 1,024 rows, so
when clusters x k is large (500 x 22) a part keeps about every row, and one task
merging the parts would hold the whole index. A bucket task holds its clusters' rows;
what the driver reads (the draws and the sizes) is clusters x k rows and a row per
cluster.

Rows are identified by their place in the pool (part, row), so the rows fetched are the
rows drawn. A prompt_id is a content hash, unique after exact dedup; were one in two
parts anyway, the first copy in pool order is drawn (as `select.draw_per_cluster`), but
each part counts it in its cluster's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import part_files, write_parquet_atomic
from core.stage import FolderStage, PartResult, Stage, Task
from pipeline.evalset.select import DIVERSE, HARD, draw_keys, first_per_cluster

KEYED = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("cluster", pa.int32()),
        ("part", pa.string()),  # the clustered part's name and the row's number in it
        ("row", pa.int64()),
        ("diverse_key", pa.uint64()),
        ("hard_key", pa.uint64()),
        ("cluster_rows", pa.int64()),  # rows of this cluster in this part
    ]
)
DRAWS = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("cluster", pa.int32()),
        ("part", pa.string()),
        ("row", pa.int64()),
        ("diverse", pa.bool_()),  # drawn for Diverse
        ("candidate", pa.bool_()),  # drawn as a Hard candidate
    ]
)
SIZES = pa.schema([("cluster", pa.int32()), ("rows", pa.int64())])
SIZES_DIR = "_sizes"


@dataclass(frozen=True)
class DrawConfig:
    """The draws of a recipe (its defaults are the Recipe's) and the bucket size."""

    seed: int
    diverse_per_cluster: int
    candidates_per_cluster: int
    # Keyed rows a bucket task holds at most (about 150 bytes each in pandas), while a
    # part keeps about all its rows; fewer when parts are large.
    rows_per_bucket: int = 1_000_000

    def __post_init__(self):
        # A cluster's size in a part travels on its drawn rows: at least one a cluster.
        if self.diverse_per_cluster < 1:
            raise UserError(f"diverse_per_cluster {self.diverse_per_cluster}: expected at least 1")
        if self.candidates_per_cluster < 0 or self.rows_per_bucket < 1:
            raise UserError(
                f"candidates_per_cluster {self.candidates_per_cluster}, rows_per_bucket "
                f"{self.rows_per_bucket}: expected at least 0 and 1"
            )

    def buckets(self, pool_rows: int) -> int:
        return max(1, math.ceil(pool_rows / self.rows_per_bucket))


def draw(rows: pd.DataFrame, config: DrawConfig) -> pd.DataFrame:
    """The rows either draw picks among `rows` (keyed, with their pool place), flagged
    `diverse` and `candidate`."""
    diverse = first_per_cluster(rows, config.diverse_per_cluster, "diverse_key").index
    candidates = first_per_cluster(rows, config.candidates_per_cluster, "hard_key").index
    drawn = rows.loc[diverse.union(candidates)]
    return drawn.assign(diverse=drawn.index.isin(diverse), candidate=drawn.index.isin(candidates))


class KeyedRows(FolderStage):
    """Clustered parts -> their drawable rows with both keys, spread over cluster buckets."""

    name = "draw-keys"
    needs = ("prompt_id", "cluster")

    def __init__(self, clustered: Path, out: Path, config: DrawConfig, buckets: int):
        super().__init__(clustered, out, config)
        self.buckets = buckets

    def config_dict(self) -> dict:
        return {**super().config_dict(), "buckets": self.buckets}

    def process(self, task: Task) -> PartResult:
        rows = pq.read_table(task.params["path"], columns=list(self.needs)).to_pandas()
        rows = rows.assign(part=task.name, row=np.arange(len(rows), dtype=np.int64))
        rows = rows.drop_duplicates("prompt_id")  # the first copy, as draw_per_cluster's index
        seed = self.config.seed
        rows = rows.assign(
            diverse_key=draw_keys(rows.prompt_id, seed, DIVERSE),
            hard_key=draw_keys(rows.prompt_id, seed, HARD),
            cluster_rows=rows.groupby("cluster").cluster.transform("size").astype(np.int64),
        )
        kept = draw(rows, self.config)  # what the pool's draw can take from this part
        table = pa.Table.from_pandas(kept, schema=KEYED, preserve_index=False)
        bucket_of = kept.cluster.to_numpy() % self.buckets
        for bucket in np.unique(bucket_of):
            part = table.filter(pa.array(bucket_of == bucket))
            write_parquet_atomic(part, self.out / f"b-{bucket:05d}" / f"{task.name}.parquet")
        return PartResult(task.name, len(rows), table.num_rows, content_hash=table_hash(table))


class DrawPerCluster(FolderStage):
    """OUT/clustered -> the Diverse and Hard-candidate draws and every cluster's size, a
    task per cluster bucket; KeyedRows is its work stage."""

    name = "draw-per-cluster"

    def __init__(self, clustered: Path, out: Path, config: DrawConfig):
        super().__init__(clustered, out, config)
        pool_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(clustered))
        self.buckets = config.buckets(pool_rows)
        self.keyed = self.out / "_keyed"

    def config_dict(self) -> dict:
        return {**super().config_dict(), "buckets": self.buckets}

    def work_stages(self) -> list[Stage]:
        return [KeyedRows(self.pool, self.keyed, self.config, self.buckets)]

    def plan(self) -> list[Task]:
        return [Task(f"part-{b:05d}", {"bucket": b}) for b in range(self.buckets)]

    def process(self, task: Task) -> PartResult:
        files = sorted((self.keyed / f"b-{task.params['bucket']:05d}").glob("*.parquet"))
        tables = [pq.read_table(f) for f in files] or [KEYED.empty_table()]
        rows = pa.concat_tables(tables).to_pandas()
        # One row per (part, cluster) carries that part's count of the cluster.
        sizes = rows.drop_duplicates(["part", "cluster"]).groupby("cluster").cluster_rows.sum()
        rows = rows.sort_values(["part", "row"]).drop_duplicates("prompt_id")
        draws = draw(rows, self.config).sort_values(["cluster", "part", "row"])
        table = pa.Table.from_pandas(draws, schema=DRAWS, preserve_index=False)
        write_parquet_atomic(table, self.out / f"{task.name}.parquet")
        sized = pa.table(
            {"cluster": sizes.index.to_numpy(np.int32), "rows": sizes.to_numpy(np.int64)},
            schema=SIZES,
        )
        write_parquet_atomic(sized, self.out / SIZES_DIR / f"{task.name}.parquet")
        return PartResult(
            task.name,
            len(rows),
            table.num_rows,
            content_hash=table_hash(table),
            stats={"clusters": len(sizes), "pool_rows": int(sizes.sum())},
        )

    def summary(self, results: list[PartResult]) -> dict:
        return {
            "buckets": self.buckets,
            "clusters": sum(r.stats["clusters"] for r in results),
            "pool_rows": sum(r.stats["pool_rows"] for r in results),
        }


def cluster_sizes(draws: Path) -> pd.Series:
    """Rows per cluster (index: cluster, ascending), from a DrawPerCluster folder."""
    tables = [pq.read_table(p) for p in part_files(draws / SIZES_DIR)]
    sizes = pa.concat_tables(tables).to_pandas().set_index("cluster").rows
    return sizes.sort_index().rename(None)
