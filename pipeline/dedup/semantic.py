"""Semantic near dedup over an embedded folder (rows with a unit `embedding`).

In: the folder written by pipeline.evalset.embed.EmbedConversations. Out: the pairs
(`prompt_id`, `duplicate_of`, `similarity`) whose cosine reaches the threshold,
written to Parquet for inspection, and the set of ids to drop. Parts are read
one at a time, only their ids and vectors; what is held across parts is a FAISS
inner-product index of the vectors kept so far (dim x 4 bytes a kept row, 1,536 for
MiniLM; + 8 for the ids of an inverted-file index), exact or, from 100k rows,
inverted-file (pipeline.dedup.kept_index), and the kept rows' ids and places as packed
arrays (KeptRows: 40 bytes a kept row).
A row is dropped when a kept earlier row (or an earlier row of its own part)
is at least `threshold` similar, so the first occurrence in folder order wins.
SemanticDedup wraps it as a Stage for `arena build-evalset` (`semantic_threshold`).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import folder_fingerprint
from core.parquet_io import (
    part_files,
    require_columns,
    write_json_atomic,
    write_parquet_atomic,
)
from core.stage import PartResult, Stage, Task, write_filtered_part
from pipeline.dedup.float32_recheck import DEFAULT_MARGIN, Float32Vectors, Row
from pipeline.dedup.kept_index import DEFAULT_NPROBE, SEARCHES, new_kept_index
from pipeline.evalset.embed import EmbedConfig, embedded_dtype, vectors_of

DEFAULT_THRESHOLD = 0.95


def _match(
    near: np.ndarray,
    candidates: list,
    row,
    threshold: float,
    band: float,
    exact_cosine: Callable | None,
) -> tuple[int, float, bool] | None:
    """The best of a row's candidate matches (cosines `near`, from threshold - band up) if it
    reaches the threshold: (candidate index, cosine, decided in float32), else None. When no
    candidate is clearly above (threshold + band), their float32 cosines decide."""
    in_float32 = band > 0 and near.max() < threshold + band
    if in_float32:
        near = np.array([exact_cosine(c, row) for c in candidates], np.float32)
    best = int(near.argmax())
    return (best, float(near[best]), in_float32) if near[best] >= threshold else None


def _kept_in_part(
    sims: np.ndarray,
    threshold: float,
    band: float = 0.0,
    exact_cosine: Callable[[int, int], float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within one part, from its rows' cosine matrix: mask of kept rows, and for dropped rows
    their kept match and cosine. A row goes when an earlier kept row matches (`_match`)."""
    n = len(sims)
    keep = np.ones(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    sim = np.zeros(n, dtype=np.float32)
    for j in range(1, n):
        earlier = np.nonzero(keep[:j] & (sims[j, :j] >= threshold - band))[0]
        if not len(earlier):
            continue
        found = _match(sims[j, earlier], earlier.tolist(), j, threshold, band, exact_cosine)
        if found:
            best, sim[j], _ = found
            keep[j], match[j] = False, earlier[best]
    return keep, match, sim


class KeptRows:
    """prompt_id and (part, row) of every vector in the kept index, by index position, in
    packed per-part arrays (32-byte ids, 4-byte row numbers: 40 bytes a row with the part
    offsets) rather than Python strings and tuples (~200 bytes a row)."""

    def __init__(self):
        self._starts: list[int] = []  # index position of each chunk's first row
        self._chunks: list[tuple[int, np.ndarray, np.ndarray]] = []  # (part, ids, rows)
        self.total = 0

    def add(self, part: int, ids: list[str], rows: np.ndarray) -> None:
        if not len(rows):
            return
        packed = np.array([ids[k].encode() for k in rows])  # bytes_, as wide as the longest
        self._starts.append(self.total)
        self._chunks.append((part, packed, rows.astype(np.int32)))
        self.total += len(rows)

    def _locate(self, k: int) -> tuple[int, np.ndarray, np.ndarray, int]:
        chunk = bisect_right(self._starts, k) - 1
        part, ids, rows = self._chunks[chunk]
        return part, ids, rows, k - self._starts[chunk]

    def id(self, k: int) -> str:
        _, ids, _, at = self._locate(k)
        return ids[at].decode()

    def at(self, k: int) -> Row:
        part, _, rows, at = self._locate(k)
        return part, int(rows[at])


def semantic_dedup(
    embedded: str | Path,
    out_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = True,
    recheck: EmbedConfig | None = None,
    margin: float = DEFAULT_MARGIN,
    search: str = "auto",
    nprobe: int = DEFAULT_NPROBE,
) -> set[str]:
    """Ids to drop; with `out_dir`, writes `pairs.parquet` explaining every drop and
    `summary.json`. With `recheck` (the config the vectors were embedded with, in reduced
    precision), pairs within `margin` of the threshold are decided in float32. `search`
    and `nprobe` choose the kept-vector index (kept_index.new_kept_index)."""
    from tqdm import tqdm

    parts = part_files(embedded)
    reduced = recheck is not None and any(
        embedded_dtype(p, recheck.dtype) != "float32" for p in parts
    )
    exact = Float32Vectors(parts, recheck) if reduced else None
    band = margin if exact is not None else 0.0
    index = None
    kept = KeptRows()  # prompt_id and (part, row) of every indexed vector
    pairs = {"prompt_id": [], "duplicate_of": [], "similarity": [], "float32": []}

    def record(row_id: str, kept_id: str, similarity: float, in_float32: bool) -> None:
        pairs["prompt_id"].append(row_id)
        pairs["duplicate_of"].append(kept_id)
        pairs["similarity"].append(float(similarity))
        pairs["float32"].append(in_float32)

    def kept_cosine(k: int, row: Row) -> float:  # k: position of a kept row in the index
        return exact.cosine(kept.at(k), row)

    for part, path in enumerate(tqdm(parts, desc="semantic dedup", disable=not progress)):
        table = pq.read_table(path, columns=["prompt_id", "embedding"])
        if table.num_rows == 0:
            continue
        ids = table.column("prompt_id").to_pylist()
        vectors = np.ascontiguousarray(vectors_of(table), dtype=np.float32)
        if index is None:
            index = new_kept_index(parts, vectors.shape[1], search, nprobe)
        alive = np.ones(len(ids), dtype=bool)
        if index.ntotal:
            # Every kept row at least threshold - band similar (range search: score > radius).
            lims, scores, found = index.range_search(vectors, threshold - band - 1e-6)
            near = {
                int(i): (scores[lims[i] : lims[i + 1]], found[lims[i] : lims[i + 1]])
                for i in np.nonzero(lims[1:] > lims[:-1])[0]
            }
            if band:  # the float32 vectors any borderline row may need, in one batch
                unsure = [i for i, (s, _) in near.items() if s.max() < threshold + band]
                exact.ensure(
                    {(part, i) for i in unsure} | {kept.at(k) for i in unsure for k in near[i][1]}
                )
            for i, (s, f) in near.items():
                decided = _match(s, f, (part, i), threshold, band, kept_cosine)
                if decided:
                    best, cosine, in_float32 = decided
                    alive[i] = False
                    record(ids[i], kept.id(int(f[best])), cosine, in_float32)
        rest = np.nonzero(alive)[0]
        sims = vectors[rest] @ vectors[rest].T
        rows = [(part, int(k)) for k in rest]
        if band:
            borderline = np.triu((sims >= threshold - band) & (sims < threshold + band), 1)
            exact.ensure({rows[k] for k in np.concatenate(np.nonzero(borderline))})
        keep, match, sim = _kept_in_part(
            sims, threshold, band, lambda i, j, rows=rows: exact.cosine(rows[i], rows[j])
        )
        for j in np.nonzero(~keep)[0]:
            in_float32 = bool(band) and sims[match[j], j] < threshold + band
            record(ids[rest[j]], ids[rest[match[j]]], sim[j], in_float32)
        index.add(vectors[rest[keep]])
        kept.add(part, ids, rest[keep])
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        summary = {
            "threshold": threshold,
            "search": type(index).__name__ if index is not None else None,
            "float32_margin": band,
            "float32_rows": exact.embedded if exact is not None else 0,
            "dropped": len(set(pairs["prompt_id"])),
        }
        # The pairs file comes last: its presence tells a rerun that both are complete.
        write_json_atomic(summary, Path(out_dir) / "summary.json")
        table = pa.table(
            pairs,
            schema=pa.schema(
                [
                    ("prompt_id", pa.string()),
                    ("duplicate_of", pa.string()),
                    ("similarity", pa.float32()),
                    ("float32", pa.bool_()),
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
    # How the vectors were embedded; where a part's footer says reduced precision (or,
    # without one, the config does), pairs within `margin` of the threshold are decided
    # on float32 vectors, so decisions match a float32 run.
    embed: EmbedConfig | None = None
    margin: float = DEFAULT_MARGIN
    # "exact" compares with every kept row; "ivf" with those of the nearest cells (linear
    # cost, measured agreement); "auto" is exact below 100k rows.
    search: str = "auto"
    nprobe: int = DEFAULT_NPROBE

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise UserError(f"semantic threshold {self.threshold}: expected a cosine in (0, 1]")
        if not 0 <= self.margin < 1:
            raise UserError(f"semantic margin {self.margin}: expected a cosine gap in [0, 1)")
        if self.search not in SEARCHES:
            raise UserError(f"semantic search {self.search!r}: expected one of {SEARCHES}")
        if self.nprobe < 1:
            raise UserError(f"semantic nprobe {self.nprobe}: expected a positive cell count")

    @property
    def recheck(self) -> EmbedConfig | None:
        reduced = self.embed is not None and self.embed.dtype != "float32"
        return self.embed if reduced and self.margin > 0 else None


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

    def input_folders(self) -> list[Path]:
        return [self.embedded]

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
            recheck=self.config.recheck,
            margin=self.config.margin,
            search=self.config.search,
            nprobe=self.config.nprobe,
        )

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.embedded)]

    def process(self, task: Task) -> PartResult:
        import pyarrow.compute as pc

        table = pq.read_table(task.params["path"])
        require_columns(table.schema, self.needs, task.params["path"])
        stat = self.pairs_file.stat()
        drop = _dropped_ids(str(self.pairs_file), stat.st_size, stat.st_mtime_ns)
        kept = table.filter(pc.invert(pc.is_in(table.column("prompt_id"), value_set=drop)))
        return write_filtered_part(self.out, task.name, table.num_rows, kept)

    def summary(self, results: list[PartResult]) -> dict:
        found = json.loads((self.pairs_file.parent / "summary.json").read_text())
        return {
            "threshold": self.config.threshold,
            "dropped": sum(r.stats["dropped"] for r in results),
            "float32_margin": found["float32_margin"],
            "float32_rows": found["float32_rows"],
            "search": found.get("search"),
        }
