"""Semantic near dedup over an embedded folder (rows with a unit `embedding`).

In: the folder written by pipeline.embed.EmbedConversations. Out: the pairs
(`prompt_id`, `duplicate_of`, `similarity`) whose cosine reaches the threshold,
written to Parquet for inspection, and the set of ids to drop. Parts are read
one at a time, only their ids and vectors; the one thing held across parts is a
FAISS inner-product index of the vectors kept so far (rows x dim x 4 bytes).
A row is dropped when a kept earlier row (or an earlier row of its own part)
is at least `threshold` similar, so the first occurrence in folder order wins.
SemanticDedup wraps it as a Stage for `arena build-evalset` (`semantic_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.embed import vectors_of
from pipeline.errors import UserError
from pipeline.hashing import folder_fingerprint
from pipeline.parquet_io import part_files, require_columns, write_parquet_atomic
from pipeline.stage import PartResult, Stage, Task, write_filtered_part

DEFAULT_THRESHOLD = 0.95


def _kept_in_part(
    vectors: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within one part: mask of kept rows, and for dropped rows their kept match and cosine."""
    n = len(vectors)
    keep = np.ones(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    sim = np.zeros(n, dtype=np.float32)
    sims = vectors @ vectors.T if n else np.zeros((0, 0), np.float32)
    for i in range(n):
        if not keep[i]:
            continue
        later = np.nonzero(sims[i, i + 1 :] >= threshold)[0] + i + 1
        later = later[keep[later]]
        keep[later] = False
        match[later] = i
        sim[later] = sims[i, later]
    return keep, match, sim


def semantic_dedup(
    embedded: str | Path,
    out_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = True,
) -> set[str]:
    """Ids to drop; with `out_dir`, writes `pairs.parquet` explaining every drop."""
    import faiss
    from tqdm import tqdm

    index = None
    kept_ids: list[str] = []
    pairs = {"prompt_id": [], "duplicate_of": [], "similarity": []}
    for path in tqdm(part_files(embedded), desc="semantic dedup", disable=not progress):
        table = pq.read_table(path, columns=["prompt_id", "embedding"])
        if table.num_rows == 0:
            continue
        ids = table.column("prompt_id").to_pylist()
        vectors = np.ascontiguousarray(vectors_of(table), dtype=np.float32)
        if index is None:
            index = faiss.IndexFlatIP(vectors.shape[1])
        alive = np.ones(len(ids), dtype=bool)
        if index.ntotal:
            scores, nearest = index.search(vectors, 1)
            for i in np.nonzero(scores[:, 0] >= threshold)[0]:
                alive[i] = False
                pairs["prompt_id"].append(ids[i])
                pairs["duplicate_of"].append(kept_ids[nearest[i, 0]])
                pairs["similarity"].append(float(scores[i, 0]))
        rest = np.nonzero(alive)[0]
        keep, match, sim = _kept_in_part(vectors[rest], threshold)
        for j in np.nonzero(~keep)[0]:
            pairs["prompt_id"].append(ids[rest[j]])
            pairs["duplicate_of"].append(ids[rest[match[j]]])
            pairs["similarity"].append(float(sim[j]))
        index.add(vectors[rest[keep]])
        kept_ids.extend(ids[k] for k in rest[keep])
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        table = pa.table(
            pairs,
            schema=pa.schema(
                [
                    ("prompt_id", pa.string()),
                    ("duplicate_of", pa.string()),
                    ("similarity", pa.float32()),
                ]
            ),
        )
        write_parquet_atomic(table, Path(out_dir) / "pairs.parquet")
    return set(pairs["prompt_id"])


@lru_cache(maxsize=2)
def _dropped_ids(pairs_file: str, size: int, mtime_ns: int) -> pa.Array:
    """Ids to drop, read once per worker process (size and mtime key the cache). An id
    matched to itself is a repeated row whose first copy was kept: dropping by id would
    lose that copy too, so those stay (later steps key by prompt_id)."""
    import pyarrow.compute as pc

    pairs = pq.read_table(pairs_file, columns=["prompt_id", "duplicate_of"])
    itself = pc.equal(pairs.column("prompt_id"), pairs.column("duplicate_of"))
    repeated = pairs.filter(itself).column("prompt_id")
    dropped = pc.unique(pairs.column("prompt_id").combine_chunks())
    return dropped.filter(pc.invert(pc.is_in(dropped, value_set=repeated)))


@dataclass(frozen=True)
class SemanticDedupConfig:
    threshold: float = DEFAULT_THRESHOLD  # cosine of unit vectors

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise UserError(f"semantic threshold {self.threshold}: expected a cosine in (0, 1]")


class SemanticDedup(Stage):
    """Embedded parts -> the same rows without semantic duplicates.

    The driver finds the pairs once (`find_pairs`, FAISS over the kept vectors,
    written to `OUT/_pairs/pairs.parquet`); each task then drops its part's
    duplicates, so rows keep their embeddings and nothing is embedded again.
    """

    name = "semantic-dedup"
    needs = ("prompt_id", "embedding")

    def __init__(self, embedded: Path, out: Path, config: SemanticDedupConfig):
        super().__init__(out, config)
        self.embedded = Path(embedded)
        self.pairs_file = self.out / "_pairs" / "pairs.parquet"

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.embedded)}

    def input_fingerprints(self) -> list[dict]:
        return [folder_fingerprint(self.embedded)]

    def find_pairs(self, progress: bool = True) -> None:
        semantic_dedup(
            self.embedded,
            self.pairs_file.parent,
            threshold=self.config.threshold,
            progress=progress,
        )

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.embedded)]

    def process(self, task: Task) -> PartResult:
        import pyarrow.compute as pc

        table = pq.read_table(task.spec["path"])
        require_columns(table.schema, self.needs, task.spec["path"])
        stat = self.pairs_file.stat()
        drop = _dropped_ids(str(self.pairs_file), stat.st_size, stat.st_mtime_ns)
        kept = table.filter(pc.invert(pc.is_in(table.column("prompt_id"), value_set=drop)))
        return write_filtered_part(self.out, task.name, table.num_rows, kept)

    def summary(self, results: list[PartResult]) -> dict:
        return {
            "threshold": self.config.threshold,
            "dropped": sum(r.stats["dropped"] for r in results),
        }
