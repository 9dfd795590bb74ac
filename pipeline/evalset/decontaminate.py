"""Decontaminate a training pool: for every benchmark item, drop its top-k nearest
training rows (paper: k = 5), and any row above an optional cosine threshold.

Out of core in three steps: each training part finds, for every benchmark item,
its own k best rows (a Stage, one task per part); the driver merges those
candidates into the global top-k (benchmark items x k x parts: small); a second
Stage drops the chosen rows from each part and reports every removed row with
its benchmark neighbour and similarity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import write_parquet_atomic
from core.schemas import short_hash
from core.stage import FolderStage, PartResult, Task
from pipeline.evalset.embed import vectors_of

CANDIDATE = pa.schema(
    [
        ("bench_row", pa.int32()),
        ("train_part", pa.string()),
        ("train_row", pa.int32()),
        ("similarity", pa.float32()),
    ]
)


@dataclass(frozen=True)
class DecontaminationConfig:
    top_k: int = field(
        default=5, metadata={"help": "training rows nearest to each benchmark item (paper: 5)"}
    )
    threshold: float | None = field(
        default=None, metadata={"help": "also drop rows with cosine >= this to a benchmark item"}
    )

    def __post_init__(self):
        if self.top_k < 0:
            raise UserError(f"--top-k {self.top_k}: expected 0 or more")
        if self.threshold is not None and not -1 <= self.threshold <= 1:
            raise UserError(f"--threshold {self.threshold}: expected a cosine in [-1, 1]")


class NearestTrainRows(FolderStage):
    """Per training part: every benchmark item's k most similar rows of that part."""

    name = "decontaminate-candidates"

    def __init__(self, train: Path, out: Path, bench: np.ndarray, config: DecontaminationConfig):
        super().__init__(train, out, config)
        self.train, self.bench = self.pool, bench.astype(np.float32)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "bench": short_hash(self.bench.tobytes())}

    def process(self, task: Task) -> PartResult:
        import faiss

        vectors = np.ascontiguousarray(
            vectors_of(pq.read_table(task.params["path"], columns=["embedding"]))
        )
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        k = min(len(vectors), max(self.config.top_k, 1))
        if self.config.threshold is not None:  # rows over the threshold may be more than k
            k = len(vectors)
        sims, rows = index.search(self.bench, k)
        bench_row = np.repeat(np.arange(len(self.bench), dtype=np.int32), k)
        table = pa.table(
            {
                "bench_row": bench_row,
                "train_part": [task.name] * len(bench_row),
                "train_row": rows.ravel().astype(np.int32),
                "similarity": sims.ravel(),
            },
            schema=CANDIDATE,
        )
        keep = pc.greater_equal(table["train_row"], 0)
        if self.config.threshold is not None:
            rank = np.tile(np.arange(k), len(self.bench))
            keep = pc.and_(
                keep, pa.array((rank < self.config.top_k) | (sims.ravel() >= self.config.threshold))
            )
        table = table.filter(keep)
        write_parquet_atomic(table, self.out / f"{task.name}.parquet")
        return PartResult(task.name, len(vectors), table.num_rows, content_hash=table_hash(table))


def choose_removals(candidates: pd.DataFrame, config: DecontaminationConfig) -> pd.DataFrame:
    """Global top-k per benchmark item (plus threshold hits); one row per removed training row,
    with the benchmark item that is most similar to it."""
    ranked = candidates.sort_values(["bench_row", "similarity"], ascending=[True, False])
    chosen = ranked.groupby("bench_row").head(config.top_k)
    if config.threshold is not None:
        chosen = pd.concat([chosen, ranked[ranked.similarity >= config.threshold]])
    chosen = chosen.sort_values("similarity", ascending=False)
    return chosen.drop_duplicates(["train_part", "train_row"]).reset_index(drop=True)


class DropContaminated(FolderStage):
    """Training parts -> the rows that stay; `_removed/` reports each removed row and why."""

    name = "decontaminate"

    def __init__(
        self,
        train: Path,
        out: Path,
        removals: pd.DataFrame,
        bench_ids: list[str],
        bench_text: list[str],
        config: DecontaminationConfig,
    ):
        super().__init__(train, out, config)
        self.train, self.removals = self.pool, removals
        self.bench_ids, self.bench_text = bench_ids, bench_text

    def config_dict(self) -> dict:
        chosen = ",".join(
            f"{p}:{r}" for p, r in zip(self.removals.train_part, self.removals.train_row)
        )
        return {**super().config_dict(), "removals": short_hash(chosen)}

    def process(self, task: Task) -> PartResult:
        table = pq.read_table(task.params["path"])
        mine = self.removals[self.removals.train_part == task.name]
        drop = np.zeros(table.num_rows, bool)
        drop[mine.train_row.to_numpy()] = True
        kept = table.filter(pa.array(~drop)).drop_columns(
            [c for c in ("embedding",) if c in table.column_names]
        )
        report = pd.DataFrame(
            {
                "prompt_id": table.column("prompt_id")
                .take(pa.array(mine.train_row.to_numpy()))
                .to_pylist(),
                "benchmark_prompt_id": [self.bench_ids[b] for b in mine.bench_row],
                "benchmark_text": [self.bench_text[b][:500] for b in mine.bench_row],
                "similarity": mine.similarity.to_numpy(),
                "reason": [
                    f"top-{self.config.top_k} neighbour of a benchmark item"
                    if self.config.threshold is None or s < self.config.threshold
                    else f"similarity >= {self.config.threshold}"
                    for s in mine.similarity
                ],
            }
        )
        write_parquet_atomic(kept, self.out / f"{task.name}.parquet")
        write_parquet_atomic(
            pa.Table.from_pandas(report, preserve_index=False),
            self.out / "_removed" / f"{task.name}.parquet",
        )
        return PartResult(
            task.name,
            table.num_rows,
            kept.num_rows,
            rows_rejected=int(drop.sum()),
            content_hash=table_hash(kept),
        )
