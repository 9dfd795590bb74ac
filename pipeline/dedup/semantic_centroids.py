"""The centroids distributed semantic dedup groups rows by, and how a row finds its nearest.

SemDeDup (Abbas et al. 2023) compares rows only within a K-means cluster, so a
cluster's size bounds a task's work. As the pool grows the clusters must grow in number
(one per `rows_per_cluster` rows), and a flat K-means over C centroids costs C per
training point and per assigned row: training would grow as C^2, assignment as C. Two
levels keep both near sqrt(C): about sqrt(C) coarse centroids trained on a sample spread
over the pool, then in each coarse cell its own fine centroids, as many as the cell's
share of the sample, trained on the sample rows of that cell. A FAISS inverted-file
index (the coarse centroids as quantizer, the fine ones as its entries) then finds a
row's nearest fine centroids among those of its nearest cells, as many cells as hold
about SCANNED fine centroids, so a row's cost stays near flat as the clusters grow.

A near duplicate across the boundary of a row's cluster is SemDeDup's known miss, so a row
close to a boundary also joins the cluster beyond it. Close is measured as the distance
from the row to the boundary (the hyperplane halfway between the two centroids), not as
a gap between cosines: a near duplicate lies within a fixed distance of its row, so only
rows that near a boundary can lose it, however many centroids there are. A cosine gap
shrinks as centroids crowd together, so a fixed gap sent 1.1 rows a row to compare at 1M
and 2.7 at 10M.

TrainCentroids is a one-task Stage, so the training runs on a worker, resumes and is
checked like any other step; the driver never holds a vector.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.parquet_io import part_files, write_parquet_atomic
from core.stage import FolderStage, PartResult, Task
from pipeline.dedup.kept_index import SAMPLE_PER_LIST, training_sample
from pipeline.evalset.embed import vectors_of

CENTROIDS_FILE = "centroids.parquet"
# Fine centroids a row is compared with, about: the cells searched hold this many. Up to
# this many clusters every one is searched. A fixed 16 cells scanned 1,190 of 5,000 clusters
# (10M rows), 3x the cost a row at 500; measured on the bench pool at 5,000 clusters,
# 11 cells (768) find a row's nearest centroid for 99.67% of rows, 16 for 99.86% (at 500
# clusters 16 of 22 cells found 99.73%; now all 22 are searched).
SCANNED = 768


def folder_rows(folder: Path) -> int:
    """Rows of a folder's parts, from their footers (nothing else is read)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(folder))


def _kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    import faiss

    if k == 1:
        mean = points.mean(axis=0, keepdims=True)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    kmeans = faiss.Kmeans(points.shape[1], k, niter=10, spherical=True, seed=seed, verbose=False)
    kmeans.train(points)
    return kmeans.centroids.copy()


def _nearest(centroids: np.ndarray, points: np.ndarray) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    return index.search(points, 1)[1][:, 0]


def train_centroids(sample: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(coarse, fine) unit centroids from a sample; about `clusters` fine ones, never more
    than the sample gives SAMPLE_PER_LIST points each (FAISS's own floor)."""
    clusters = max(1, min(clusters, len(sample) // SAMPLE_PER_LIST))
    coarse = _kmeans(sample, max(1, min(round(math.sqrt(clusters)), clusters)), seed)
    cell = _nearest(coarse, sample)
    fine = []
    for c in range(len(coarse)):
        members = sample[cell == c]
        if not len(members):
            continue
        share = round(clusters * len(members) / len(sample))
        fine.append(_kmeans(members, max(1, min(share, len(members) // SAMPLE_PER_LIST)), seed + c))
    return coarse, np.concatenate(fine)


class CentroidIndex:
    """Nearest fine centroids of unit vectors, searching the nearest coarse cells that hold
    about `scanned` fine centroids between them."""

    def __init__(self, coarse: np.ndarray, fine: np.ndarray, scanned: int = SCANNED):
        import faiss

        self.fine = fine
        self.quantizer = faiss.IndexFlatIP(coarse.shape[1])  # the IVF index does not own it
        self.quantizer.add(coarse)
        self.index = faiss.IndexIVFFlat(
            self.quantizer, coarse.shape[1], len(coarse), faiss.METRIC_INNER_PRODUCT
        )
        self.index.add(fine)  # each fine centroid listed under its nearest coarse one
        self.index.nprobe = max(1, min(len(coarse), round(scanned * len(coarse) / len(fine))))

    def nearest(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, fine-centroid numbers), each (rows, k), nearest first."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        cosines, found = self.index.search(vectors, k)
        missing = np.nonzero((found < 0).any(axis=1))[0]
        if len(missing):  # probed cells held fewer than k centroids: search them all
            flat = faiss.IndexFlatIP(self.fine.shape[1])
            flat.add(self.fine)
            cosines[missing], found[missing] = flat.search(vectors[missing], k)
        return cosines, found


def boundary_distances(cosines: np.ndarray, nearest: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """(rows, k) from `CentroidIndex.nearest`: each row's distance to the boundary between its
    nearest centroid's cell and the k-th's (0 for the nearest). For unit centroids a and b
    and a unit row x, that is (x.a - x.b) / |a - b|."""
    distances = np.zeros_like(cosines)
    for k in range(1, cosines.shape[1]):
        between = np.einsum("ij,ij->i", fine[nearest[:, 0]], fine[nearest[:, k]])
        apart = np.sqrt(np.maximum(2 - 2 * between, 1e-12))
        distances[:, k] = (cosines[:, 0] - cosines[:, k]) / apart
    return distances


def read_centroids(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(path)
    level = table.column("level").to_numpy(zero_copy_only=False)
    vectors = vectors_of(table, "centroid")
    return vectors[level == "coarse"], vectors[level == "fine"]


@lru_cache(maxsize=2)
def centroid_index(path: str, size: int, mtime_ns: int) -> CentroidIndex:
    """Built once per worker process (size and mtime key the cache)."""
    return CentroidIndex(*read_centroids(Path(path)))


def load_centroid_index(path: Path) -> CentroidIndex:
    stat = path.stat()
    return centroid_index(str(path), stat.st_size, stat.st_mtime_ns)


class TrainCentroids(FolderStage):
    """Vector folder -> CENTROIDS_FILE: coarse and fine centroids, one task."""

    name = "semantic-centroids"
    needs = ("embedding",)

    def __init__(self, vectors: Path, out: Path, clusters: int, seed: int):
        super().__init__(vectors, out, {"clusters": clusters, "seed": seed})
        self.vectors = self.pool
        self.clusters = clusters
        self.seed = seed

    def plan(self) -> list[Task]:
        return [Task("centroids", {})]

    def process(self, task: Task) -> PartResult:
        parts = part_files(self.vectors)
        rows = folder_rows(self.vectors)
        sample = training_sample(parts, rows, SAMPLE_PER_LIST * self.clusters)
        coarse, fine = train_centroids(sample, self.clusters, self.seed)
        table = pa.table(
            {
                "level": pa.array(["coarse"] * len(coarse) + ["fine"] * len(fine)),
                "centroid": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.concatenate([coarse, fine]).ravel(), pa.float32()),
                    coarse.shape[1],
                ),
            }
        )
        write_parquet_atomic(table, self.out / CENTROIDS_FILE)
        return PartResult(
            task.name,
            len(sample),
            len(fine),
            stats={"coarse": len(coarse), "fine": len(fine), "sample": len(sample)},
        )

    def summary(self, results: list[PartResult]) -> dict:
        return results[0].stats
