"""FAISS spherical K-means: train on a sample of the embeddings, then assign every row.

Training reads one part at a time and keeps only a seeded sample (FAISS needs
about 40-256 points per centroid), so the pool never has to fit in memory; it runs
as a one-task work stage of the assignment (TrainKMeans), on a worker, not in the
driver. Assignment is a Stage: each part gets `cluster` and `cluster_similarity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import part_files, write_parquet_atomic
from core.stage import FolderStage, PartResult, Stage, Task
from pipeline.evalset.embed import vectors_of


@dataclass(frozen=True)
class KMeansConfig:
    clusters: int = 500  # the paper's value
    points_per_centroid: int = 256  # training sample = clusters x this, at most
    iterations: int = 20
    seed: int = 0


def sampled_rows(part_rows: list[int], size: int, seed: int) -> list[np.ndarray]:
    """A seeded uniform sample of `size` of the pool's rows, as each part's row numbers."""
    total = sum(part_rows)
    chosen = np.sort(
        np.random.default_rng(seed).choice(total, size=min(size, total), replace=False)
    )
    starts = np.cumsum([0, *part_rows])
    return [chosen[(chosen >= s) & (chosen < s + n)] - s for s, n in zip(starts, part_rows)]


def sample_vectors(embedded: Path, size: int, seed: int) -> np.ndarray:
    """The vectors of `sampled_rows`, reading one part at a time."""
    parts = part_files(embedded)
    rows = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    sample = [
        vectors_of(pq.read_table(path, columns=["embedding"]))[local]
        for path, local in zip(parts, sampled_rows(rows, size, seed))
        if len(local)
    ]
    # already float32: no second copy of the sample (clusters x 256 x dim x 4 bytes)
    return np.asarray(np.concatenate(sample), dtype=np.float32)


def train_kmeans(embedded: Path, config: KMeansConfig) -> np.ndarray:
    """Unit-length centroids, (clusters, dim)."""
    import faiss

    total = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(embedded))
    if total < config.clusters:
        raise UserError(
            f"the pool has {total} rows, fewer than the {config.clusters} clusters asked for"
        )
    sample = sample_vectors(embedded, config.clusters * config.points_per_centroid, config.seed)
    kmeans = faiss.Kmeans(
        sample.shape[1],
        config.clusters,
        niter=config.iterations,
        seed=config.seed,
        spherical=True,
        max_points_per_centroid=config.points_per_centroid,
        # FAISS prints (from C, past logging) a warning under 39 points a centroid; a small
        # pool with the paper's cluster count is a choice, not a fault
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(sample)
    return kmeans.centroids.copy()


CENTROIDS_FILE = "centroids.parquet"


class TrainKMeans(FolderStage):
    """Embedded parts -> CENTROIDS_FILE (one `centroid` vector a row), in one task."""

    name = "train-kmeans"

    def plan(self) -> list[Task]:
        return [Task("centroids", {})]

    def process(self, task: Task) -> PartResult:
        centroids = train_kmeans(self.pool, self.config)
        table = pa.table({"centroid": _fixed_list(centroids)})
        write_parquet_atomic(table, self.out / CENTROIDS_FILE)
        return PartResult(task.name, 0, table.num_rows, content_hash=table_hash(table))


def read_centroids(path: Path) -> np.ndarray:
    return np.ascontiguousarray(vectors_of(pq.read_table(path), "centroid"), np.float32)


def _fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.astype(np.float32).ravel()), matrix.shape[1]
    )


class AssignClusters(FolderStage):
    """Embedded parts -> the same rows plus the nearest centroid and its cosine similarity;
    the centroids come from its work stage, TrainKMeans."""

    name = "assign-clusters"
    needs = ("embedding",)
    makes = ("cluster", "cluster_similarity")

    def __init__(self, embedded: Path, out: Path, config: KMeansConfig):
        super().__init__(embedded, out, config)
        self.embedded = self.pool
        self.centroids_file = self.out / "_kmeans" / CENTROIDS_FILE
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(self.pool))
        if rows < config.clusters:  # before any task, in the driver: one line
            raise UserError(
                f"the pool has {rows} rows, fewer than the {config.clusters} clusters asked for"
            )

    def work_stages(self) -> list[Stage]:
        return [TrainKMeans(self.pool, self.centroids_file.parent, self.config)]

    def process(self, task: Task) -> PartResult:
        import faiss

        table = pq.read_table(task.params["path"])
        centroids = read_centroids(self.centroids_file)
        index = faiss.IndexFlatIP(centroids.shape[1])
        index.add(centroids)
        similarity, nearest = index.search(np.ascontiguousarray(vectors_of(table)), 1)
        for name in self.makes:
            if name in table.column_names:
                table = table.drop_columns([name])
        table = table.append_column("cluster", pa.array(nearest[:, 0].astype(np.int32)))
        table = table.append_column(
            "cluster_similarity", pa.array(similarity[:, 0].astype(np.float32))
        )
        write_parquet_atomic(table, self.out / f"{task.name}.parquet")
        return PartResult(task.name, table.num_rows, table.num_rows, content_hash=table_hash(table))
