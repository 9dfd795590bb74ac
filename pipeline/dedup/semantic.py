"""Semantic near dedup of a folder of unit `embedding` vectors (or of conversations, embedded
first): the SemanticDedup stage, and the global pass that is its reference.

SemanticDedup finds the drops in work stages inside its folder, then each task rewrites
one part without them and writes what it dropped, and why, to `_dropped/`. Two passes
find them, both by the rule of pipeline.dedup.semantic_rule:
- "clusters" (pipeline.dedup.semantic_clusters, the default from CLUSTERS_FROM_ROWS
  rows): centroids, a shuffle by centroid, one task per bucket of centroids. Linear
  cost, bounded memory per task, nothing in the driver; a near duplicate whose pair lands
  in two clusters is missed unless `assign` is 2.
- "exact" (or "ivf"): `semantic_dedup`, one task over the whole folder: every row is
  compared with every earlier kept row. The reference for small pools and for measuring
  the clusters pass. Parts are read one at a time, only their ids and vectors; what is
  held across parts is a FAISS
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
import math
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import combine_hashes
from core.parquet_io import (
    check_parts,
    consecutive_parts,
    part_files,
    require_columns,
    require_rows,
    write_json_atomic,
    write_parquet_atomic,
)
from core.runner import MANIFEST_FILE
from core.stage import FolderStage, PartResult, Stage, Task, write_filtered_part
from pipeline.dedup.float32_recheck import (
    DEFAULT_MARGIN,
    Float32Vectors,
    Row,
    embedded_again,
    needs_float32_look,
    part_texts,
)
from pipeline.dedup.kept_index import DEFAULT_NPROBE, new_kept_index
from pipeline.dedup.kept_index import SEARCHES as GLOBAL_SEARCHES
from pipeline.dedup.semantic_centroids import CENTROIDS_FILE, TrainCentroids, folder_rows
from pipeline.dedup.semantic_clusters import ClusterPairs, ShuffleByCentroid
from pipeline.dedup.semantic_rule import DEFAULT_THRESHOLD, PAIRS, best_match, kept_in_block
from pipeline.evalset.embed import EmbedConfig, EmbedConversations, vectors_of


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
    search: str = "exact",
    nprobe: int = DEFAULT_NPROBE,
) -> set[str]:
    """The global pass. Ids to drop; with `out_dir`, writes `pairs.parquet` (PAIRS rows, one
    per drop) and `summary.json`. With `recheck` (the config the vectors were embedded
    with, in reduced precision), pairs within `margin` of the threshold are decided in
    float32. `search` and `nprobe` choose the kept-vector index (kept_index.new_kept_index)."""
    from tqdm import tqdm

    parts = part_files(embedded)
    reduced = recheck is not None and any(needs_float32_look(p, recheck) for p in parts)
    exact = Float32Vectors(embedded_again(recheck, part_texts(parts))) if reduced else None
    band = margin if exact is not None else 0.0
    index = None
    kept = KeptRows()  # prompt_id and (part, row) of every indexed vector
    pairs = {name: [] for name in PAIRS.names}

    def record(row_id: str, row: Row, kept_id: str, kept_row: Row, similarity, in_float32) -> None:
        for name, value in zip(
            PAIRS.names,
            (row_id, *row, kept_id, *kept_row, float(similarity), bool(in_float32), -1),
            strict=True,
        ):
            pairs[name].append(value)

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
                decided = best_match(s, f, (part, i), threshold, band, kept_cosine)
                if decided:
                    best, cosine, in_float32 = decided
                    alive[i] = False
                    k = int(f[best])
                    record(ids[i], (part, i), kept.id(k), kept.at(k), cosine, in_float32)
        rest = np.nonzero(alive)[0]
        sims = vectors[rest] @ vectors[rest].T
        rows = [(part, int(k)) for k in rest]
        if band:
            borderline = np.triu((sims >= threshold - band) & (sims < threshold + band), 1)
            exact.ensure({rows[k] for k in np.concatenate(np.nonzero(borderline))})
        keep, match, sim = kept_in_block(
            sims, threshold, band, lambda i, j, rows=rows: exact.cosine(rows[i], rows[j])
        )
        for j in np.nonzero(~keep)[0]:
            in_float32 = bool(band) and sims[match[j], j] < threshold + band
            m = match[j]
            record(ids[rest[j]], rows[j], ids[rest[m]], rows[m], sim[j], in_float32)
        index.add(vectors[rest[keep]])
        kept.add(part, ids, rest[keep])
    if out_dir is not None:
        summary = {
            "search": type(index).__name__ if index is not None else None,
            "float32_margin": band,
            "float32_rows": exact.embedded if exact is not None else 0,
        }
        write_json_atomic(summary, Path(out_dir) / "summary.json")
        write_parquet_atomic(pa.table(pairs, schema=PAIRS), Path(out_dir) / "pairs.parquet")
    return set(pairs["prompt_id"])


def has_vectors(folder: Path) -> bool:
    parts = part_files(folder)
    return bool(parts) and "embedding" in pq.read_schema(parts[0]).names


def check_semantic_input(folder: Path, config: SemanticDedupConfig) -> None:
    """One line, before a cluster starts, when `folder` is not one semantic dedup reads: parts
    with vectors (`prompt_id`, `embedding`) or conversations to embed (`prompt_id`,
    `messages`), some rows, and no more clusters asked for than rows."""
    needs = ("prompt_id", "embedding") if has_vectors(folder) else ("prompt_id", "messages")
    try:
        parts = check_parts(folder, needs)
    except UserError as exc:
        raise UserError(
            f"{exc} (semantic dedup reads vectors, or conversations to embed)"
        ) from None
    require_rows(folder, parts)
    rows = folder_rows(folder)
    config.resolved_clusters(rows)  # --clusters above the rows is wrong whatever the search


SEARCHES = ("auto", "clusters", *GLOBAL_SEARCHES[1:])  # auto, clusters, exact, ivf
CLUSTERS_FROM_ROWS = 100_000  # "auto" takes the clusters pass from here: it wins above
MOST_ASSIGNED = 8
FILTER_TASK_ROWS = 250_000  # rows of the consecutive parts one filter task reads


@dataclass(frozen=True)
class SemanticDedupConfig:
    threshold: float = field(
        default=DEFAULT_THRESHOLD, metadata={"help": "cosine that makes a duplicate"}
    )
    # How the vectors were embedded; where a part's footer says reduced precision (or,
    # without one, the config does), pairs within `margin` of the threshold are decided
    # on float32 vectors, so decisions match a float32 run.
    embed: EmbedConfig | None = None
    margin: float = field(
        default=DEFAULT_MARGIN, metadata={"help": "pairs this close to the threshold: float32"}
    )
    search: str = field(
        default="auto",
        metadata={
            "help": "clusters: compare within K-means clusters on the workers (linear); "
            "exact: every row with every earlier kept row in one task (the reference); "
            "ivf: the same with an inverted-file index; auto: clusters from "
            f"{CLUSTERS_FROM_ROWS:,} rows",
            "choices": SEARCHES,
        },
    )
    nprobe: int = field(default=DEFAULT_NPROBE, metadata={"help": "ivf: cells searched per row"})
    clusters: int = field(
        default=0, metadata={"help": "clusters pass: K-means clusters (0: by rows-per-cluster)"}
    )
    rows_per_cluster: int = field(
        default=2000, metadata={"help": "clusters pass: mean rows a cluster, when --clusters is 0"}
    )
    assign: int = field(
        default=3,
        metadata={
            "help": "clusters pass: most clusters a row is compared in (1: its nearest only, "
            "as SemDeDup; more catch near duplicates across a cluster boundary)"
        },
    )
    boundary_reach: float = field(
        default=0.05,
        metadata={
            "help": "clusters pass: a row also joins a further cluster when its distance to "
            "their boundary is under this share of the distance a duplicate may lie from it, "
            "sqrt(2 (1 - threshold)) (0: its nearest only; 1: every cluster a duplicate may "
            "fall in, up to --assign)"
        },
    )
    block_rows: int = field(
        default=4096, metadata={"help": "clusters pass: rows compared at once in a cluster"}
    )
    rows_per_bucket: int = field(
        default=50_000,
        metadata={"help": "clusters pass: pool rows a compare task covers (x clusters a row)"},
    )
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.threshold, bool) or not 0 < self.threshold <= 1:
            raise UserError(f"semantic threshold {self.threshold}: expected a cosine in (0, 1]")
        if not 0 <= self.margin < 1:
            raise UserError(f"semantic margin {self.margin}: expected a cosine gap in [0, 1)")
        if self.search not in SEARCHES:
            raise UserError(f"semantic search {self.search!r}: expected one of {SEARCHES}")
        if not 1 <= self.assign <= MOST_ASSIGNED:
            raise UserError(f"--assign {self.assign}: expected 1 to {MOST_ASSIGNED} clusters")
        if not 0 <= self.boundary_reach <= 1:
            raise UserError(
                f"--boundary-reach {self.boundary_reach}: expected a share in [0, 1] of the "
                "distance a duplicate may lie"
            )
        for name in ("nprobe", "rows_per_cluster", "block_rows", "rows_per_bucket"):
            if getattr(self, name) < 1:
                raise UserError(f"semantic {name} {getattr(self, name)}: expected at least 1")
        if self.clusters < 0:
            raise UserError(f"--clusters {self.clusters}: expected 0 (by rows) or more")

    @property
    def recheck(self) -> EmbedConfig | None:
        reduced = self.embed is not None and self.embed.dtype != "float32"
        return self.embed if reduced and self.margin > 0 else None

    @property
    def boundary_distance(self) -> float:
        """How near a boundary a row joins the cluster beyond it: a share of how far a
        duplicate may lie (unit vectors at cosine t are sqrt(2 (1 - t)) apart)."""
        return self.boundary_reach * math.sqrt(2 * (1 - self.threshold))

    def resolved_search(self, rows: int) -> str:
        if self.search == "auto":
            return "clusters" if rows >= CLUSTERS_FROM_ROWS else "exact"
        return self.search

    def resolved_clusters(self, rows: int) -> int:
        """Clusters for a pool of `rows`; more than its rows is a one-line error."""
        clusters = self.clusters or max(1, math.ceil(rows / self.rows_per_cluster))
        if clusters > rows:
            raise UserError(f"--clusters {clusters}: more than the {rows} rows to deduplicate")
        return clusters


class GlobalPairs(FolderStage):
    """A vector folder -> `pairs.parquet`: the global pass, as one task on a worker."""

    name = "semantic-global-pairs"

    def __init__(self, vectors: Path, out: Path, config: SemanticDedupConfig, search: str):
        super().__init__(vectors, out, config)
        self.vectors = self.pool
        self.search = search

    def config_dict(self) -> dict:
        return {**super().config_dict(), "search": self.search}

    def plan(self) -> list[Task]:
        return [Task("pairs", {})]

    def process(self, task: Task) -> PartResult:
        config = self.config
        dropped = semantic_dedup(
            self.vectors,
            self.out,
            threshold=config.threshold,
            progress=False,
            recheck=config.recheck,
            margin=config.margin,
            search=self.search,
            nprobe=config.nprobe,
        )
        found = json.loads((self.out / "summary.json").read_text())
        return PartResult(task.name, 0, len(dropped), stats=found)

    def summary(self, results: list[PartResult]) -> dict:
        return {k: results[0].stats[k] for k in ("float32_margin", "float32_rows")}


class SemanticDedup(FolderStage):
    """Parts with vectors (or conversations, embedded first by `embed_first`) -> the same
    parts without their semantic duplicates; `_dropped/` says what went and why."""

    name = "semantic-dedup"
    needs = ("prompt_id", "embedding")

    def __init__(
        self, pool: Path, out: Path, config: SemanticDedupConfig, embed_first: bool = False
    ):
        super().__init__(pool, out, config)
        self.embed_first = embed_first
        self.rows = folder_rows(self.pool)
        self.search = config.resolved_search(self.rows)
        self.vector_parts = self._vector_parts()
        self.pairs = self.out / "_pairs"

    def _vector_parts(self) -> list[Path]:
        """The parts the pass reads, known before they exist: embedding names its parts by
        its plan, so a resumed or finished run plans the same tasks."""
        if not self.embed_first:
            return part_files(self.pool)
        return sorted(self.out / "_embedded" / f"{t.name}.parquet" for t in self._embed().plan())

    def _embed(self):
        embed = self.config.embed or EmbedConfig()
        return EmbedConversations(self.pool, self.out / "_embedded", embed)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "search": self.search, "embed_first": self.embed_first}

    def work_stages(self) -> list[Stage]:
        config, vectors = self.config, self.vector_parts[0].parent
        stages = [self._embed()] if self.embed_first else []
        if self.search != "clusters":
            return [*stages, GlobalPairs(vectors, self.pairs, config, self.search)]
        buckets = max(1, math.ceil(self.rows / config.rows_per_bucket))
        clusters = config.resolved_clusters(self.rows)
        centroids, shuffled = self.out / "_centroids", self.out / "_shuffle"
        return [
            *stages,
            TrainCentroids(vectors, centroids, clusters, config.seed),
            ShuffleByCentroid(
                self.vector_parts,
                shuffled,
                centroids / CENTROIDS_FILE,
                buckets,
                config.assign,
                config.boundary_distance,
                config.recheck,
            ),
            ClusterPairs(
                shuffled,
                self.pairs,
                self.vector_parts,
                buckets,
                config.threshold,
                config.margin,
                config.block_rows,
                config.recheck,
            ),
        ]

    def plan(self) -> list[Task]:
        # A task filters a run of consecutive parts: each task reads the footer of every
        # pairs file, and those grow in number with the pool, so a task a part would cost
        # parts x pairs files.
        runs = consecutive_parts(self.vector_parts, FILTER_TASK_ROWS)
        return [Task(Path(run[0][0]).stem, {"parts": run}) for run in runs]

    def process(self, task: Task) -> PartResult:
        run = task.params["parts"]
        files = [str(f) for f in sorted(self.pairs.glob("*.parquet"))]
        between = [("part", ">=", run[0][1]), ("part", "<=", run[-1][1])]
        pairs = pq.read_table(files, schema=PAIRS, filters=between)
        # A row two clusters dropped (assign 2) is reported once, by its closest match.
        pairs = pairs.sort_by(
            [("part", "ascending"), ("row", "ascending"), ("similarity", "descending")]
        )
        places = np.column_stack([pairs.column(c).to_numpy() for c in ("part", "row")])
        first = np.r_[True, (places[1:] != places[:-1]).any(axis=1)] if len(places) else []
        pairs = pairs.filter(pa.array(first, pa.bool_()))
        numbers = pairs.column("part").to_numpy()
        results = [
            self._filter_part(Path(path), pairs.filter(pa.array(numbers == number)))
            for path, number in run
        ]
        return PartResult(
            task.name,
            sum(r.rows_in for r in results),
            sum(r.rows_out for r in results),
            content_hash=combine_hashes({r.name: r.content_hash for r in results}),
            stats={"dropped": sum(r.stats["dropped"] for r in results)},
        )

    def _filter_part(self, path: Path, pairs: pa.Table) -> PartResult:
        """Part `path` without the rows `pairs` drop; those rows, with why, in `_dropped/`."""
        import pyarrow.compute as pc

        table = pq.read_table(path)
        require_columns(table.schema, self.needs, str(path))
        drop = np.zeros(table.num_rows, dtype=bool)
        drop[pairs.column("row").to_numpy()] = True
        gone = table.filter(pa.array(drop))
        source = {
            name: gone.column(name) if name in gone.column_names else pa.nulls(len(gone), kind)
            for name, kind in (("source_file", pa.string()), ("source_line", pa.int64()))
        }
        dropped = pa.table(
            {
                "prompt_id": pairs.column("prompt_id"),
                **source,
                **{
                    n: pairs.column(n) for n in ("duplicate_of", "similarity", "float32", "cluster")
                },
            }
        )
        write_parquet_atomic(dropped, self.out / "_dropped" / f"{path.stem}.parquet")
        kept = table.filter(pc.invert(pa.array(drop)))
        return write_filtered_part(self.out, path.stem, table.num_rows, kept)

    def summary(self, results: list[PartResult]) -> dict:
        # What the pass found and what each step cost, read once: the work folders go
        # when the stage ends.
        work, found = {}, {}
        for stage in self.work_stages():
            manifest = stage.out / MANIFEST_FILE
            if manifest.exists():
                work[stage.name] = json.loads(manifest.read_text())
                if stage.out in (self.pairs, self.out / "_shuffle"):
                    found.update(work[stage.name]["summary"])
        finished = self.out / MANIFEST_FILE
        if not work and finished.exists():  # a finished run: its work folders are gone
            return json.loads(finished.read_text())["summary"]
        return {
            "threshold": self.config.threshold,
            "search": self.search,
            "dropped": sum(r.stats["dropped"] for r in results),
            "float32_margin": found.get("float32_margin", 0.0),
            "float32_rows": found.get("float32_rows", 0),
            **(
                {
                    "clusters": found["clusters"],
                    "assign": self.config.assign,
                    "boundary_reach": self.config.boundary_reach,
                    "clusters_a_row": found["clusters_a_row"],
                }
                if self.search == "clusters"
                else {}
            ),
            # Each step's worker seconds and span (Unix times), so a benchmark sampling the
            # workers' CPU can say which step's cost grows with the pool.
            "steps": {
                **{
                    name: _step(m["worker_seconds"], m["started"], m["finished"])
                    for name, m in work.items()
                },
                self.name: _step(
                    sum(r.seconds for r in results),
                    max((m["finished"] for m in work.values()), default=time.time()),
                    time.time(),
                ),
            },
        }


def _step(worker_seconds: float, started: float, finished: float) -> dict:
    return {
        "worker_seconds": round(worker_seconds, 3),
        "started": round(started, 3),
        "finished": round(finished, 3),
    }
