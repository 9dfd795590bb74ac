"""Distributed semantic dedup: rows shuffled by their nearest centroid, then one task per
bucket of centroids compares each centroid's rows (SemDeDup, Abbas et al. 2023).

1. ShuffleByCentroid: each part of the vector folder finds its rows' `assign` nearest
   centroids (pipeline.dedup.semantic_centroids) and writes every row, with its place in
   the pool and its vector in float16, into the bucket of each (one file per part and
   bucket), as exact dedup shuffles by key.
2. ClusterPairs: per bucket, each centroid's rows in pool order, in blocks of
   `block_rows`: a block is compared with the earlier blocks' kept rows, then with itself
   (pipeline.dedup.semantic_rule); a pair whose float16 cosine is too close to the
   threshold to call is decided on float32 vectors (pipeline.dedup.float32_recheck). It
   writes the drops it decided as PAIRS rows.

A task holds one part or one bucket, never the pool: buckets are sized by rows and the
cosine matrices by the block. A near duplicate whose pair lands in two clusters is
SemDeDup's known miss: so a row near a boundary (within `boundary_reach` of the distance
a duplicate may lie from it, sqrt(2 (1 - threshold))) joins up to `assign` clusters, is
compared in each, and goes when any finds an earlier kept match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.hashing import folder_fingerprint
from core.parquet_io import consecutive_parts, write_parquet_atomic
from core.schemas import prompt_text
from core.stage import FolderStage, PartResult, Stage, Task
from pipeline.dedup.float32_recheck import (
    FLOAT16_ERROR,
    Compute,
    Float32Vectors,
    embedded_again,
    needs_float32_look,
    read_back,
)
from pipeline.dedup.semantic_centroids import boundary_distances, load_centroid_index
from pipeline.dedup.semantic_rule import PAIRS, best_match, kept_in_block
from pipeline.evalset.embed import EmbedConfig, vectors_of

PAIRS_ROW_GROUP = 1024
# A shuffle task takes consecutive parts until it has about this many rows a bucket, so a
# file a task writes holds about that many rows whatever the pool: with one part a task,
# files would grow in number as parts x buckets (both grow with the pool), and each costs
# a write. Capped so a task holds a bounded number of vectors.
SHUFFLE_FILE_ROWS = 500
SHUFFLE_TASK_ROWS = 250_000


def bucket_folder(shuffled: Path, bucket: int) -> Path:
    return shuffled / f"b-{bucket:05d}"


class ShuffleByCentroid(Stage):
    """Vector parts -> their rows, each in the bucket of each of its `assign` nearest centroids."""

    name = "semantic-shuffle"
    needs = ("prompt_id", "embedding")

    def __init__(
        self,
        parts: list[Path],
        out: Path,
        centroids_file: Path,
        buckets: int,
        assign: int,
        boundary: float,
        recheck: EmbedConfig | None,
    ):
        config = {"buckets": buckets, "assign": assign, "boundary": boundary}
        super().__init__(out, {**config, "text": recheck is not None})
        self.parts = parts
        self.centroids_file = centroids_file
        self.recheck = recheck

    def input_folders(self) -> list[Path]:
        return [self.parts[0].parent] if self.parts else []

    def config_dict(self) -> dict:
        return {
            **super().config_dict(),
            "parts": [p.name for p in self.parts],
            "centroids": folder_fingerprint(self.centroids_file.parent),
        }

    def plan(self) -> list[Task]:
        target = min(SHUFFLE_TASK_ROWS, SHUFFLE_FILE_ROWS * self.config["buckets"])
        return [
            Task(Path(r[0][0]).stem, {"parts": r}) for r in consecutive_parts(self.parts, target)
        ]

    def process(self, task: Task) -> PartResult:
        shuffled = pa.concat_tables(self._assigned(Path(p), n) for p, n in task.params["parts"])
        clusters = shuffled.column("cluster").to_numpy()
        bucket_of = clusters % self.config["buckets"]
        for bucket in np.unique(bucket_of):
            part = shuffled.filter(pa.array(bucket_of == bucket))
            write_parquet_atomic(
                part, bucket_folder(self.out, int(bucket)) / f"{task.name}.parquet"
            )
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p, _ in task.params["parts"])
        return PartResult(task.name, rows, shuffled.num_rows)

    def summary(self, results: list[PartResult]) -> dict:
        rows = sum(r.rows_in for r in results)
        return {"clusters_a_row": round(sum(r.rows_out for r in results) / max(rows, 1), 3)}

    def _assigned(self, path: Path, number: int) -> pa.Table:
        """The rows of part `number`, each once per cluster it joins."""
        assign = self.config["assign"]
        with_text = self.recheck is not None and needs_float32_look(path, self.recheck)
        table = pq.read_table(path, columns=["prompt_id", "embedding", *(["messages"] * with_text)])
        index = load_centroid_index(self.centroids_file)
        cosines, nearest = index.nearest(vectors_of(table), assign)
        # A row joins its nearest cluster, and the next ones whose boundary it is close to,
        # so a near duplicate across the boundary meets it in one of them.
        joins = boundary_distances(cosines, nearest, index.fine) <= self.config["boundary"]
        joins[:, 0] = True
        at, choice = (x.astype(np.int32) for x in np.nonzero(joins.T)[::-1])
        clusters = nearest[at, choice]
        vectors = table.column("embedding").take(at)
        columns = {
            "prompt_id": table.column("prompt_id").take(at),
            # float16 halves the shuffle; pairs it leaves too close to call read float32 back
            "embedding": vectors.cast(pa.list_(pa.float16(), vectors.type.list_size)),
            "part": pa.array(np.full(len(at), number, np.int32)),
            "row": pa.array(at),
            "cluster": pa.array(clusters.astype(np.int32)),
        }
        # Every row has a text column, null where no float32 look embeds it again (vectors
        # alone, or float32 ones), so parts with and without texts concatenate.
        columns["text"] = pa.nulls(len(at), pa.string())
        if with_text:
            texts = [prompt_text(m) for m in table.column("messages").to_pylist()]
            columns["text"] = pa.array(texts, pa.string()).take(at)
        return pa.table(columns)


def dedup_in_order(
    vectors: np.ndarray, threshold: float, band: float, block_rows: int, exact=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows in pool order -> (match, similarity, decided in float32), match -1 for a kept row.
    Blocks of `block_rows` are compared with the earlier blocks' kept rows (in chunks of as
    many), then within themselves; `exact.cosine(i, j)` gives float32 cosines by row number."""
    n = len(vectors)
    kept = np.zeros(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    similarity = np.zeros(n, dtype=np.float32)
    in_float32 = np.zeros(n, dtype=bool)
    cosine = exact.cosine if exact is not None else None
    low = threshold - band
    for start in range(0, n, block_rows):
        block = vectors[start : start + block_rows]
        alive = np.ones(len(block), dtype=bool)
        earlier = np.nonzero(kept[:start])[0]
        near: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for c in range(0, len(earlier), block_rows):
            chunk = earlier[c : c + block_rows]
            sims = block @ vectors[chunk].T
            row, k = np.nonzero(sims >= low)
            near.append((row, chunk[k], sims[row, k]))
        if near:
            rows, found, sims = (np.concatenate(x) for x in zip(*near, strict=True))
            order = np.argsort(rows, kind="stable")
            rows, found, sims = rows[order], found[order], sims[order]
            heads = np.nonzero(np.r_[True, rows[1:] != rows[:-1]])[0] if len(rows) else []
            groups = np.split(np.arange(len(rows)), heads[1:]) if len(rows) else []
            if band:  # every float32 vector the borderline rows need, in one batch
                unsure = [g for g in groups if sims[g].max() < threshold + band]
                exact.ensure({int(x) for g in unsure for x in (start + rows[g[0]], *found[g])})
            for g in groups:
                j = int(rows[g[0]])
                decided = best_match(sims[g], found[g].tolist(), start + j, threshold, band, cosine)
                if decided:
                    best, similarity[start + j], in_float32[start + j] = decided
                    alive[j], match[start + j] = False, found[g][best]
        rest = np.nonzero(alive)[0]
        sims = block[rest] @ block[rest].T
        at = start + rest
        if band:  # pairs (j, i), i earlier, too close to call
            j, i = np.nonzero((sims >= low) & (sims < threshold + band))
            exact.ensure({int(at[k]) for k in np.concatenate((j[i < j], i[i < j]))})
        keep, within, sim = kept_in_block(
            sims, threshold, band, lambda i, j, at=at: exact.cosine(int(at[i]), int(at[j]))
        )
        for j in np.nonzero(~keep)[0]:
            match[at[j]], similarity[at[j]] = at[within[j]], sim[j]
            in_float32[at[j]] = bool(band) and sims[j, within[j]] < threshold + band
        kept[at[keep]] = True
    return match, similarity, in_float32


class ClusterPairs(FolderStage):
    """Shuffled buckets -> per bucket, the drops its centroids' rows decide (PAIRS rows)."""

    name = "semantic-pairs"

    def __init__(
        self,
        shuffled: Path,
        out: Path,
        parts: list[Path],
        buckets: int,
        threshold: float,
        margin: float,
        block_rows: int,
        recheck: EmbedConfig | None,
    ):
        config = {"buckets": buckets, "threshold": threshold, "margin": margin}
        super().__init__(shuffled, out, {**config, "block_rows": block_rows})
        self.shuffled = self.pool
        self.parts = parts  # the vector parts, read back for float32 looks
        self.recheck = recheck

    def plan(self) -> list[Task]:
        return [Task(f"b-{b:05d}", {"bucket": b}) for b in range(self.config["buckets"])]

    def process(self, task: Task) -> PartResult:
        files = sorted(bucket_folder(self.shuffled, task.params["bucket"]).glob("*.parquet"))
        pairs = PAIRS.empty_table()
        stats = {"rows": 0, "clusters": 0, "float32_rows": 0}
        if files:
            table = pa.concat_tables(pq.read_table(f) for f in files).sort_by(
                [("cluster", "ascending"), ("part", "ascending"), ("row", "ascending")]
            )
            pairs, stats = self._decide(table)
        # Sorted by part in small row groups: a filter task reads only its part's groups.
        write_parquet_atomic(pairs, self.out / f"{task.name}.parquet", PAIRS_ROW_GROUP)
        return PartResult(task.name, stats["rows"], pairs.num_rows, stats=stats)

    def _decide(self, table: pa.Table) -> tuple[pa.Table, dict]:
        vectors = np.ascontiguousarray(vectors_of(table), dtype=np.float32)
        clusters = table.column("cluster").to_numpy()
        # Rows of a part in reduced precision carry their text; float32 ones need no look.
        reduced = table.column("text").null_count < len(table)
        margin = self.config["margin"] if self.recheck is not None and reduced else 0.0
        band = margin + FLOAT16_ERROR
        exact = Float32Vectors(self._float32_of(table))
        heads = np.nonzero(np.r_[True, clusters[1:] != clusters[:-1]])[0]
        ends = np.r_[heads[1:], len(clusters)]
        match = np.full(len(clusters), -1, dtype=np.int64)
        similarity = np.zeros(len(clusters), dtype=np.float32)
        in_float32 = np.zeros(len(clusters), dtype=bool)
        for a, b in zip(heads, ends, strict=True):
            # the cluster's rows: Float32Vectors keys are bucket row numbers, so offset
            m, s, f = dedup_in_order(
                vectors[a:b],
                self.config["threshold"],
                band,
                self.config["block_rows"],
                _Offset(exact, a),
            )
            dropped = m >= 0
            match[a:b][dropped] = m[dropped] + a
            similarity[a:b], in_float32[a:b] = s, f
        at = np.nonzero(match >= 0)[0]
        rows = table.take(pa.array(at, pa.int64()))
        kept = table.take(pa.array(match[at], pa.int64()))
        pairs = pa.table(
            {
                "prompt_id": rows.column("prompt_id"),
                "part": rows.column("part"),
                "row": rows.column("row"),
                "duplicate_of": kept.column("prompt_id"),
                "duplicate_of_part": kept.column("part"),
                "duplicate_of_row": kept.column("row"),
                "similarity": pa.array(similarity[at]),
                "float32": pa.array(in_float32[at]),
                "cluster": rows.column("cluster"),
            }
        ).cast(PAIRS)
        stats = {
            "rows": len(clusters),
            "clusters": len(heads),
            "float32_rows": exact.embedded,
            "float32_margin": band,
        }
        return pairs.sort_by([("part", "ascending"), ("row", "ascending")]), stats

    def _float32_of(self, table: pa.Table) -> Compute:
        """Bucket row numbers -> float32 vectors: embedded again from the text a reduced-
        precision row carries, else the pool's own vector read back by (part, row)."""
        texts = table.column("text").to_pylist()  # null: no text to embed again
        parts, rows = table.column("part").to_numpy(), table.column("row").to_numpy()
        stored = read_back(self.parts)
        again = embedded_again(self.recheck, texts.__getitem__) if self.recheck else None

        def compute(keys: list[int]) -> np.ndarray:
            by_text = [k for k in keys if texts[k] is not None]
            by_place = [k for k in keys if texts[k] is None]
            made = {}
            if by_text:
                made.update(zip(by_text, again(by_text), strict=True))
            if by_place:
                places = [(int(parts[k]), int(rows[k])) for k in by_place]
                made.update(zip(by_place, stored(places), strict=True))
            return np.stack([made[k] for k in keys])

        return compute

    def summary(self, results: list[PartResult]) -> dict:
        return {
            "clusters": sum(r.stats.get("clusters", 0) for r in results),
            "compared_rows": sum(r.rows_in for r in results),
            "largest_bucket": max((r.rows_in for r in results), default=0),
            "float32_rows": sum(r.stats.get("float32_rows", 0) for r in results),
            "float32_margin": max((r.stats.get("float32_margin", 0.0) for r in results), default=0),
        }


class _Offset:
    """A cluster's view of the bucket's float32 vectors: its row i is the bucket's a + i."""

    def __init__(self, vectors: Float32Vectors, offset: int):
        self.vectors, self.offset = vectors, int(offset)

    def ensure(self, rows: set) -> None:
        self.vectors.ensure({self.offset + r for r in rows})

    def cosine(self, i: int, j: int) -> float:
        return self.vectors.cosine(self.offset + int(i), self.offset + int(j))
