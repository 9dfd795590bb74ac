"""Near dedup (MinHash LSH) as Stages on a Dask client, so it resumes and scales.

1. MinHashSignatures: each input part gets one compact signature row per
   conversation (prompt_id, source position, part and row number, a text
   preview and `num_perm` 32-bit MinHash values) in `OUT/_signatures/`.
2. In the driver, `NearDedup.find_clusters` reads only those signatures, bands
   and joins them (`pipeline.dedup.minhash.duplicate_clusters`) in source order
   (source_file, source_line), and writes `OUT/_clusters/clusters.parquet`: one
   row per member of a duplicate cluster, the first member kept.
3. NearDedup: each input part is rewritten without its dropped rows, with the
   input's schema, so OUT is a conversation folder like its input.

Rows are dropped by (part, row), never by prompt_id, so two copies with the same
id never both disappear.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import folder_fingerprint, table_hash
from core.parquet_io import check_parts, part_files, write_parquet_atomic
from core.schemas import prompt_text
from core.stage import PartResult, Stage, Task, write_filtered_part

PREVIEW_CHARS = 200
NEEDS = ("prompt_id", "messages", "source_file", "source_line")
# Signature rows carry these beside the signature; the clusters file repeats them.
_SIGNED = ("prompt_id", "source_file", "source_line", "part", "row", "preview")

CLUSTERS = pa.schema(
    [
        ("cluster", pa.int64()),
        ("prompt_id", pa.string()),
        ("kept", pa.bool_()),
        ("kept_id", pa.string()),  # prompt_id of the member that stays
        ("similarity", pa.float32()),  # estimated Jaccard to the kept member
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("part", pa.string()),  # input part and row number: what NearDedup drops
        ("row", pa.int64()),
        ("preview", pa.string()),
    ]
)


@dataclass(frozen=True)
class NearDedupConfig:
    threshold: float = field(
        default=0.8,
        metadata={"help": "estimated Jaccard of word 3-gram sets that makes a duplicate"},
    )
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations"})
    seed: int = 1

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise UserError(f"--threshold {self.threshold}: expected a value in (0, 1]")
        if self.num_perm < 2:
            raise UserError(f"--num-perm {self.num_perm}: expected at least 2")


def check_pool(pool: Path) -> list[Path]:
    """The input's parts, or one line saying why it is not a folder near dedup reads."""
    return check_parts(pool, NEEDS)


class MinHashSignatures(Stage):
    """Input parts -> one compact signature row per conversation."""

    name = "near-dedup-signatures"
    needs = NEEDS
    makes = ("signature",)

    def __init__(self, pool: Path, out: Path, config: NearDedupConfig):
        super().__init__(out, config)
        self.pool = Path(pool)

    def input_folders(self) -> list[Path]:
        return [self.pool]

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.pool)}

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.pool)]

    def process(self, task: Task) -> PartResult:
        from pipeline.dedup.minhash import signatures

        table = pq.read_table(task.params["path"], columns=list(self.needs))
        texts = [prompt_text(m) for m in table.column("messages").to_pylist()]
        sigs = signatures(texts, num_perm=self.config.num_perm, seed=self.config.seed)
        if sigs.size and int(sigs.max()) > np.iinfo(np.uint32).max:
            raise RuntimeError("MinHash values exceed 32 bits; datasketch changed its hashing")
        column = pa.FixedSizeListArray.from_arrays(
            pa.array(sigs.astype(np.uint32).ravel(), pa.uint32()), self.config.num_perm
        )
        out = pa.table(
            {
                "prompt_id": table.column("prompt_id"),
                "source_file": table.column("source_file"),
                "source_line": table.column("source_line"),
                "part": pa.array([task.name] * table.num_rows, pa.string()),
                "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
                "preview": pa.array([t[:PREVIEW_CHARS] for t in texts], pa.string()),
                "signature": column,
            }
        )
        write_parquet_atomic(out, self.out / f"{task.name}.parquet")
        return PartResult(task.name, out.num_rows, out.num_rows, content_hash=table_hash(out))


class NearDedup(Stage):
    """Input parts -> the same parts without the non-first members of duplicate clusters."""

    name = "near-dedup"
    needs = ("prompt_id",)

    def __init__(self, pool: Path, out: Path, config: NearDedupConfig):
        super().__init__(out, config)
        self.pool = Path(pool)
        self.signed = self.out / "_signatures"
        self.clusters_file = self.out / "_clusters" / "clusters.parquet"

    def input_folders(self) -> list[Path]:
        return [self.pool]

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.pool)}

    def input_fingerprints(self) -> list[dict]:
        return [folder_fingerprint(self.pool)]

    def signature_stage(self) -> MinHashSignatures:
        return MinHashSignatures(self.pool, self.signed, self.config)

    def clean_work(self) -> None:
        """The signatures are only needed until the clusters are written."""
        shutil.rmtree(self.signed, ignore_errors=True)

    def find_clusters(self) -> int:
        """Driver side: band and join the signatures; write the clusters file. Returns its rows."""
        from pipeline.dedup.minhash import duplicate_clusters

        files = part_files(self.signed)
        meta = pa.concat_tables([pq.read_table(f, columns=list(_SIGNED)) for f in files])
        order = pc.sort_indices(
            meta,
            sort_keys=[
                ("source_file", "ascending"),
                ("source_line", "ascending"),
                ("part", "ascending"),
                ("row", "ascending"),
            ],
        ).to_numpy()
        meta = meta.take(order)
        perms = self.config.num_perm
        sigs = np.concatenate(
            [_signature_matrix(pq.read_table(f, columns=["signature"]), perms) for f in files]
        )[order]
        ids = meta.column("prompt_id").to_pylist()
        clusters = duplicate_clusters(
            ids, sigs, threshold=self.config.threshold, num_perm=self.config.num_perm
        )
        clusters.sort(key=lambda members: members[0])  # cluster ids follow source order
        picked, cluster, kept, kept_id, similarity = [], [], [], [], []
        for c, members in enumerate(clusters):
            head = members[0]
            for i in members:
                picked.append(i)
                cluster.append(c)
                kept.append(i == head)
                kept_id.append(ids[head])
                similarity.append(float(np.mean(sigs[i] == sigs[head])))
        rows = meta.take(pa.array(picked, pa.int64()))
        table = pa.table(
            {
                "cluster": pa.array(cluster, pa.int64()),
                "prompt_id": rows.column("prompt_id"),
                "kept": pa.array(kept, pa.bool_()),
                "kept_id": pa.array(kept_id, pa.string()),
                "similarity": pa.array(similarity, pa.float32()),
                **{name: rows.column(name) for name in _SIGNED if name != "prompt_id"},
            }
        ).select(CLUSTERS.names)
        write_parquet_atomic(table.cast(CLUSTERS), self.clusters_file)
        return table.num_rows

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.pool)]

    def process(self, task: Task) -> PartResult:
        table = pq.read_table(task.params["path"])
        drop = pq.read_table(
            self.clusters_file,
            columns=["row"],
            filters=[("part", "=", task.name), ("kept", "=", False)],
        )
        mask = np.ones(table.num_rows, dtype=bool)
        mask[drop.column("row").to_numpy()] = False
        kept = table.filter(pa.array(mask))
        return write_filtered_part(self.out, task.name, table.num_rows, kept)

    def summary(self, results: list[PartResult]) -> dict:
        clusters = pq.read_table(self.clusters_file, columns=["cluster"])
        return {
            "threshold": self.config.threshold,
            "num_perm": self.config.num_perm,
            "clusters": len(pc.unique(clusters.column("cluster"))),
            "dropped": sum(r.stats["dropped"] for r in results),
        }


def _signature_matrix(table: pa.Table, num_perm: int) -> np.ndarray:
    col = table.column("signature").combine_chunks()
    return col.values.to_numpy(zero_copy_only=False).reshape(len(col), num_perm)
