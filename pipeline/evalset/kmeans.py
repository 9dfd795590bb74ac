"""FAISS spherical K-means: train on a sample of the embeddings, then assign every row.

Training reads one part at a time and keeps only a seeded sample (FAISS needs
about 40-256 points per centroid), so the pool never has to fit in memory.
Assignment is a Stage: each part gets `cluster` and `cluster_similarity`.
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
from core.schemas import short_hash
from core.stage import FolderStage, PartResult, Task
from pipeline.evalset.embed import vectors_of


@dataclass(frozen=True)
class KMeansConfig:
    clusters: int = 500  # the paper's value
    points_per_centroid: int = 256  # training sample = clusters x this, at most
    iterations: int = 20
    seed: int = 0


def sample_vectors(embedded: Path, size: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of `size` rows' vectors, reading one part at a time."""
    parts = part_files(embedded)
    rows = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    total = sum(rows)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=min(size, total), replace=False))
    sample, start = [], 0
    for path, n in zip(parts, rows):
        local = chosen[(chosen >= start) & (chosen < start + n)] - start
        if len(local):
            sample.append(vectors_of(pq.read_table(path, columns=["embedding"]))[local])
        start += n
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
        verbose=False,
    )
    kmeans.train(sample)
    return kmeans.centroids.copy()


class AssignClusters(FolderStage):
    """Embedded parts -> the same rows plus the nearest centroid and its cosine similarity."""

    name = "assign-clusters"
    needs = ("embedding",)
    makes = ("cluster", "cluster_similarity")

    def __init__(self, embedded: Path, out: Path, centroids: np.ndarray):
        super().__init__(embedded, out)
        self.embedded = self.pool
        self.centroids = centroids.astype(np.float32)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "centroids": short_hash(self.centroids.tobytes())}

    def process(self, task: Task) -> PartResult:
        import faiss

        table = pq.read_table(task.params["path"])
        index = faiss.IndexFlatIP(self.centroids.shape[1])
        index.add(self.centroids)
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
