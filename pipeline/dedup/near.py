"""Near dedup (MinHash LSH) as Stages on a Dask client, so it resumes and scales.

In the shape of datatrove's MinHash pipeline (signatures and band buckets, pairs per
bucket, clusters, filter), NearDedup's work stages, which `run_stage` runs first:

1. MinHashSignatures: each input part gets one compact signature row per
   conversation (prompt_id, source position, part and row number, a text
   preview and `num_perm` 32-bit MinHash values) in `OUT/_signatures/`, and its
   LSH band keys, each with the row's id and source position but no signature,
   shuffled into `buckets` band-key buckets
   (`OUT/_signatures/_bands/b-NNNNN/<part>.parquet`).
2. CandidatePairs: per bucket, each row sharing a (band, key) with others is paired
   with the group's first row in source order; the pairs, unverified, go to the
   folder of the first row's part (`OUT/_candidates/<part>/b-NNNNN.parquet`).
3. FirstSignatures: per part, its candidate pairs, each once, get the signature of
   their first row (from that part's signature file) and go to the folder of the
   other row's part (`OUT/_signed_candidates/<part>/<first's part>.parquet`).
4. VerifiedPairs: per part, the pairs whose estimated Jaccard, on the signature they
   carry and the other row's from that part's signature file, reaches the threshold
   (`OUT/_pairs/<part>.parquet`).
5. DuplicateClusters: one task joins the verified pairs (union-find over the rows
   that have a duplicate) and writes `OUT/_clusters/clusters.parquet`: one row per
   member of a duplicate cluster, clusters in source order (source_file,
   source_line, part, row), the first member kept.

NearDedup then rewrites each input part without its dropped rows, with the input's
schema, so OUT is a conversation folder like its input. No task holds more than one
part, one bucket, or (the clusters task) the rows that have a duplicate; a signature
is stored once, in its part's file, and travels once per distinct candidate pair (a
band file carrying it cost ~6.8 KB a pool row with datatrove's 14 bands). The clusters
are those of `pipeline.dedup.minhash.duplicate_clusters` (see `pairs_with_first`).

Rows are dropped by (part, row), never by prompt_id, so two copies with the same
id never both disappear.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import UserError
from core.hashing import combine_hashes, table_hash
from core.parquet_io import atomic_path, check_parts, part_files, write_parquet_atomic
from core.runner import is_complete
from core.schemas import prompt_text
from core.stage import FolderStage, PartResult, Stage, Task, write_filtered_part
from pipeline.dedup.minhash import (
    band_keys,
    connected_rows,
    estimated_jaccard,
    key_buckets,
    lsh_bands,
    pairs_with_first,
    signatures,
)

PREVIEW_CHARS = 200
TEXT_SLICE_ROWS = 4096  # rows whose texts a signature task holds as Python strings at once
NEEDS = ("prompt_id", "messages", "source_file", "source_line")
# Signature rows carry these beside the signature; the clusters file repeats them.
_SIGNED = ("prompt_id", "source_file", "source_line", "part", "row", "preview")
BANDS_DIR = "_bands"  # inside the signatures folder: b-NNNNN/<part>.parquet
# A row's id in the band and pair files: its input part's number (in part-name order) in
# the high 32 bits, its row in the low ones, so id order is (part, row) order.
_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1

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

PAIRS = pa.schema(
    [
        ("first", pa.int64()),  # row id (see _ROW_BITS) of the group's first row
        ("other", pa.int64()),
        ("similarity", pa.float32()),
    ]
)
CANDIDATES = pa.schema([("first", pa.int64()), ("other", pa.int64())])


@dataclass(frozen=True)
class NearDedupConfig:
    threshold: float = field(
        default=0.8,
        metadata={"help": "estimated Jaccard of word n-gram sets that makes a duplicate"},
    )
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations"})
    ngram: int = field(
        default=3, metadata={"help": "words per shingle (datatrove's MinHash uses 5)"}
    )
    seed: int = 1
    # Band rows (a row enters one bucket per band) per band-key bucket task: its peak
    # grows about 300 bytes a band row (150 MiB at 467k, 231 MiB at 840k), and two such
    # tasks at once were most of the job's peak beside datatrove's.
    rows_per_bucket: int = 250_000

    def __post_init__(self):
        if not 0 < self.threshold <= 1:
            raise UserError(f"--threshold {self.threshold}: expected a value in (0, 1]")
        if self.num_perm < 2:
            raise UserError(f"--num-perm {self.num_perm}: expected at least 2")
        if self.ngram < 1:
            raise UserError(f"--ngram {self.ngram}: expected at least 1 (words per shingle)")
        if self.rows_per_bucket < 1:
            raise UserError(f"rows_per_bucket {self.rows_per_bucket}: expected at least 1")

    def bands(self) -> tuple[int, int]:
        return lsh_bands(self.threshold, self.num_perm)

    def resolved_buckets(self, total_rows: int) -> int:
        return max(1, math.ceil(total_rows * self.bands()[0] / self.rows_per_bucket))


def check_pool(pool: Path) -> list[Path]:
    """The input's parts, or one line saying why it is not a folder near dedup reads."""
    return check_parts(pool, NEEDS)


class _NearWork(FolderStage):
    """A near-dedup work stage: reads the pool (its fingerprint is in the config) and
    shares the bucket count."""

    def __init__(self, pool: Path, out: Path, config: NearDedupConfig, buckets: int):
        super().__init__(pool, out, config)
        self.buckets = buckets

    def config_dict(self) -> dict:
        return {**super().config_dict(), "buckets": self.buckets}


class MinHashSignatures(_NearWork):
    """Input parts -> one compact signature row per conversation, and the part's band
    keys spread over the band-key buckets."""

    name = "near-dedup-signatures"
    needs = NEEDS
    makes = ("signature",)

    def plan(self) -> list[Task]:
        return [
            Task(p.stem, {"path": str(p), "part_number": n})
            for n, p in enumerate(part_files(self.pool))
        ]

    def process(self, task: Task) -> PartResult:
        """A slice of rows at a time, end to end (signatures, signature rows, band rows):
        the task holds one slice's texts, signatures and band keys, whatever the part's
        size (a whole part's band keys and texts as Python objects came to ~4 KB a row)."""
        path, first_id = Path(task.params["path"]), task.params["part_number"] << _ROW_BITS
        source = pq.ParquetFile(path)
        rows, hashes = 0, []
        with contextlib.ExitStack() as files:
            signed = files.enter_context(atomic_path(self.out / f"{task.name}.parquet"))
            signed_writer, band_writers = None, {}
            for batch in source.iter_batches(TEXT_SLICE_ROWS, columns=list(self.needs)):
                table = pa.Table.from_batches([batch])
                texts = [prompt_text(m) for m in table.column("messages").to_pylist()]
                sigs = self._signatures(texts)
                out = pa.table(
                    {
                        "prompt_id": table.column("prompt_id"),
                        "source_file": table.column("source_file"),
                        "source_line": table.column("source_line"),
                        "part": pa.array([task.name] * table.num_rows, pa.string()),
                        "row": pa.array(np.arange(rows, rows + table.num_rows, dtype=np.int64)),
                        "preview": pa.array([t[:PREVIEW_CHARS] for t in texts], pa.string()),
                        "signature": _binary(sigs),
                    }
                )
                if signed_writer is None:
                    signed_writer = files.enter_context(
                        pq.ParquetWriter(signed, out.schema, **_coding(out.schema))
                    )
                signed_writer.write_table(out)
                hashes.append(table_hash(out))
                self._write_bands(task, files, band_writers, out, sigs, first_id + rows)
                rows += table.num_rows
            if signed_writer is None:  # an empty part: an empty signature file all the same
                empty = _signed_schema(self.config)
                files.enter_context(pq.ParquetWriter(signed, empty)).write_table(
                    empty.empty_table()
                )
        digest = combine_hashes(dict(enumerate(hashes)))
        return PartResult(task.name, rows, rows, content_hash=digest)

    def _signatures(self, texts: list[str]) -> np.ndarray:
        made = signatures(
            texts, num_perm=self.config.num_perm, seed=self.config.seed, k=self.config.ngram
        )
        if made.size and int(made.max()) > np.iinfo(np.uint32).max:
            raise RuntimeError("MinHash values exceed 32 bits; datasketch changed its hashing")
        return made.astype(np.uint32).reshape(len(texts), self.config.num_perm)

    def _write_bands(self, task, files, writers, signed: pa.Table, sigs, first_id) -> None:
        """A slice's band rows, appended to the file of each bucket it has keys in (opened
        on first use): key, source position and row id, no signature (the verifying tasks
        read it from the part's signature file, stored once rather than once a band)."""
        bands, rows = self.config.bands()
        n = len(sigs)
        keys = np.concatenate([band_keys(sigs, b, rows) for b in range(bands)])
        row_of = np.tile(np.arange(n, dtype=np.int64), bands)
        bucket_of = key_buckets(keys, self.buckets)
        by_bucket = np.argsort(bucket_of, kind="stable")
        bounds = np.searchsorted(bucket_of[by_bucket], np.arange(self.buckets + 1))
        schema = _band_schema(self.config)
        for bucket in range(self.buckets):
            picked = by_bucket[bounds[bucket] : bounds[bucket + 1]]
            if not len(picked):
                continue
            if bucket not in writers:
                path = self.out / BANDS_DIR / f"b-{bucket:05d}" / f"{task.name}.parquet"
                writers[bucket] = files.enter_context(
                    pq.ParquetWriter(
                        files.enter_context(atomic_path(path)), schema, **_coding(schema)
                    )
                )
            taken = pa.array(row_of[picked])
            writers[bucket].write_table(
                pa.table(
                    {
                        "key": _binary(keys[picked]),
                        "source_file": signed.column("source_file").take(taken),
                        "source_line": signed.column("source_line").take(taken),
                        "id": pa.array(first_id + row_of[picked], pa.int64()),
                    },
                    schema=schema,
                )
            )


class CandidatePairs(_NearWork):
    """Band-key buckets -> candidate pairs (first row of a band-key group, another row),
    unverified, in the folder of the first row's part."""

    name = "near-dedup-candidates"
    needs = ("key", "source_file", "source_line", "id")
    makes = tuple(CANDIDATES.names)

    def __init__(self, pool, out, config, buckets: int, signed: Path):
        super().__init__(pool, out, config, buckets)
        self.signed = Path(signed)

    def input_folders(self) -> list[Path]:
        return [self.signed]

    def plan(self) -> list[Task]:
        return [Task(f"b-{b:05d}", {"bucket": b}) for b in range(self.buckets)]

    def process(self, task: Task) -> PartResult:
        folder = self.signed / BANDS_DIR / task.name
        tables = [
            pq.read_table(f, columns=list(self.needs), read_dictionary=["source_file"])
            for f in sorted(folder.glob("*.parquet"))
        ]
        table = pa.concat_tables(tables).unify_dictionaries() if tables else None
        del tables
        rows_in = table.num_rows if table is not None else 0
        pairs = np.zeros((0, 2), np.int64)
        if rows_in:
            ids = table.column("id").to_numpy()
            first, other = pairs_with_first(_words(table.column("key")), _source_rank(table, ids))
            # A pair found in several bands of this bucket is written once.
            pairs = np.unique(np.column_stack([ids[first], ids[other]]), axis=0)
        candidates = _candidates(pairs)
        _write_by_part(candidates, pairs[:, 0], _part_names(self.pool), self.out, task.name)
        return PartResult(task.name, rows_in, len(pairs), content_hash=table_hash(candidates))


class FirstSignatures(_NearWork):
    """Candidate pairs by the first row's part -> each distinct pair with the first row's
    signature, in the folder of the other row's part."""

    name = "near-dedup-first-signatures"
    makes = (*CANDIDATES.names, "signature")

    def __init__(self, pool, out, config, buckets: int, signed: Path, candidates: Path):
        super().__init__(pool, out, config, buckets)
        self.signed, self.candidates = Path(signed), Path(candidates)

    def input_folders(self) -> list[Path]:
        return [self.signed, self.candidates]

    def process(self, task: Task) -> PartResult:
        found = _read_folder(self.candidates / task.name, CANDIDATES)
        # The same pair comes from every bucket holding a band key the two rows share.
        pairs = np.unique(
            np.column_stack([found.column(c).to_numpy() for c in CANDIDATES.names]), axis=0
        )
        signed = _candidates(pairs).append_column(
            "signature",
            _binary(_part_signatures(self.signed / f"{task.name}.parquet", pairs[:, 0])),
        )
        _write_by_part(signed, pairs[:, 1], _part_names(self.pool), self.out, task.name)
        return PartResult(
            task.name, found.num_rows, len(pairs), content_hash=table_hash(_candidates(pairs))
        )


class VerifiedPairs(_NearWork):
    """Signed candidate pairs by the other row's part -> the pairs whose estimated Jaccard
    reaches the threshold."""

    name = "near-dedup-pairs"
    makes = tuple(PAIRS.names)

    def __init__(self, pool, out, config, buckets: int, signed: Path, signed_candidates: Path):
        super().__init__(pool, out, config, buckets)
        self.signed, self.signed_candidates = Path(signed), Path(signed_candidates)

    def input_folders(self) -> list[Path]:
        return [self.signed, self.signed_candidates]

    def process(self, task: Task) -> PartResult:
        # Files in part order of the first rows, each sorted: pairs in (first, other) order.
        table = _read_folder(
            self.signed_candidates / task.name, _signed_candidates_schema(self.config)
        )
        other = table.column("other").to_numpy()
        similarity = estimated_jaccard(
            _words(table.column("signature")),
            _part_signatures(self.signed / f"{task.name}.parquet", other),
        )
        ok = similarity >= self.config.threshold
        pairs = pa.table(
            [
                pa.array(table.column("first").to_numpy()[ok], pa.int64()),
                pa.array(other[ok], pa.int64()),
                pa.array(similarity[ok], pa.float32()),
            ],
            schema=PAIRS,
        )
        write_parquet_atomic(pairs, self.out / f"{task.name}.parquet")
        return PartResult(
            task.name,
            table.num_rows,
            pairs.num_rows,
            content_hash=table_hash(pairs),
            stats={"candidates": table.num_rows, "verified": pairs.num_rows},
        )


class DuplicateClusters(_NearWork):
    """Verified pairs -> the clusters file (one task: union-find over rows with a duplicate)."""

    name = "near-dedup-clusters"
    makes = tuple(CLUSTERS.names)

    def __init__(self, pool, out, config, buckets: int, signed: Path, pairs: Path):
        super().__init__(pool, out, config, buckets)
        self.signed, self.pairs = Path(signed), Path(pairs)

    @property
    def clusters_file(self) -> Path:
        return self.out / "clusters.parquet"

    def input_folders(self) -> list[Path]:
        return [self.pairs, self.signed]

    def plan(self) -> list[Task]:
        return [Task("clusters", {})]

    def process(self, task: Task) -> PartResult:
        pairs = pa.concat_tables(
            pq.read_table(f, columns=["first", "other"]) for f in part_files(self.pairs)
        )
        ids, labels = connected_rows(
            pairs.column("first").to_numpy(), pairs.column("other").to_numpy()
        )
        del pairs
        if not len(ids):
            write_parquet_atomic(CLUSTERS.empty_table(), self.clusters_file)
            return PartResult(task.name, 0, 0, content_hash=table_hash(CLUSTERS.empty_table()))
        members, sigs = self._members(ids)
        # Clusters follow source order, as do the members of each; the first one is kept.
        rank = np.empty(len(ids), np.int64)
        rank[pc.sort_indices(members, sort_keys=_SOURCE_ORDER).to_numpy()] = np.arange(len(ids))
        head_rank = np.full(labels.max() + 1, len(ids), np.int64)
        np.minimum.at(head_rank, labels, rank)
        head_rank = head_rank[labels]
        head = np.empty(len(ids), np.int64)
        head[rank] = np.arange(len(ids))  # member index by rank
        head = head[head_rank]
        order = np.lexsort((rank, head_rank))
        _, cluster = np.unique(head_rank[order], return_inverse=True)
        ordered = members.take(pa.array(order))
        prompt_ids = members.column("prompt_id")
        table = pa.table(
            {
                "cluster": pa.array(cluster, pa.int64()),
                "prompt_id": ordered.column("prompt_id"),
                "kept": pa.array((rank == head_rank)[order]),
                "kept_id": prompt_ids.take(pa.array(head[order])),
                "similarity": pa.array(
                    estimated_jaccard(sigs[order], sigs[head[order]]), pa.float32()
                ),
                **{name: ordered.column(name) for name in _SIGNED if name != "prompt_id"},
            }
        ).select(CLUSTERS.names)
        table = table.cast(CLUSTERS)
        write_parquet_atomic(table, self.clusters_file)
        return PartResult(task.name, len(ids), table.num_rows, content_hash=table_hash(table))

    def _members(self, ids: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """The signature rows (without the signature) and signatures of `ids` (sorted row
        ids), read one input part at a time."""
        names = _part_names(self.pool)
        parts = ids >> _ROW_BITS
        tables, sigs = [], []
        for number in np.unique(parts):
            path = self.signed / f"{names[number]}.parquet"
            signed = _rows_of(path, ids[parts == number] & _ROW_MASK, [*_SIGNED, "signature"])
            tables.append(signed.select(list(_SIGNED)))
            sigs.append(_words(signed.column("signature")))
        return pa.concat_tables(tables), np.concatenate(sigs)


_SOURCE_ORDER = [
    ("source_file", "ascending"),
    ("source_line", "ascending"),
    ("part", "ascending"),
    ("row", "ascending"),
]


class NearDedup(FolderStage):
    """Input parts -> the same parts without the non-first members of duplicate clusters."""

    name = "near-dedup"
    needs = ("prompt_id",)

    def __init__(self, pool: Path, out: Path, config: NearDedupConfig):
        super().__init__(pool, out, config)
        total = sum(pq.ParquetFile(p).metadata.num_rows for p in check_pool(self.pool))
        self.buckets = config.resolved_buckets(total)
        self.signed = self.out / "_signatures"
        self.candidates = self.out / "_candidates"
        self.signed_candidates = self.out / "_signed_candidates"
        self.pairs = self.out / "_pairs"
        self.clusters = DuplicateClusters(
            self.pool, self.out / "_clusters", config, self.buckets, self.signed, self.pairs
        )
        self.clusters_file = self.clusters.clusters_file

    def work_stages(self) -> list[Stage]:
        if is_complete(self.clusters):
            # Clusters of this configuration are written (a rerun redoing a damaged output
            # part): the signatures and pairs, long removed, are not needed again.
            return [self.clusters]
        near = (self.pool, self.config, self.buckets)
        return [
            MinHashSignatures(self.pool, self.signed, self.config, self.buckets),
            CandidatePairs(self.pool, self.candidates, *near[1:], self.signed),
            FirstSignatures(
                self.pool, self.signed_candidates, *near[1:], self.signed, self.candidates
            ),
            VerifiedPairs(self.pool, self.pairs, *near[1:], self.signed, self.signed_candidates),
            self.clusters,
        ]

    def clean_work(self) -> None:
        """Signatures and pairs are only needed until the clusters are written; the
        clusters stay, the report of what was dropped."""
        for work in (self.signed, self.candidates, self.signed_candidates, self.pairs):
            shutil.rmtree(work, ignore_errors=True)

    def process(self, task: Task) -> PartResult:
        table = pq.read_table(task.params["path"])
        drop = pq.read_table(
            self.clusters_file,
            columns=["row"],
            filters=[("part", "=", task.name), ("kept", "=", False)],
        )
        mask = np.ones(table.num_rows, dtype=bool)
        mask[drop.column("row").to_numpy()] = False
        kept, rows_in = table.filter(pa.array(mask)), table.num_rows
        del table  # the kept rows are a copy: the part need not stay while they are hashed
        return write_filtered_part(self.out, task.name, rows_in, kept)

    def summary(self, results: list[PartResult]) -> dict:
        clusters = pq.read_table(self.clusters_file, columns=["cluster"])
        return {
            "threshold": self.config.threshold,
            "num_perm": self.config.num_perm,
            "ngram": self.config.ngram,
            "buckets": self.buckets,
            "clusters": len(pc.unique(clusters.column("cluster"))),
            "dropped": sum(r.stats["dropped"] for r in results),
        }


def _signed_schema(config: NearDedupConfig) -> pa.Schema:
    """The signature rows' schema (what an empty part's file holds)."""
    return pa.schema(
        [
            ("prompt_id", pa.string()),
            ("source_file", pa.string()),
            ("source_line", pa.int64()),
            ("part", pa.string()),
            ("row", pa.int64()),
            ("preview", pa.string()),
            ("signature", pa.binary(4 * config.num_perm)),  # num_perm uint32 values
        ]
    )


def _band_schema(config: NearDedupConfig) -> pa.Schema:
    rows = config.bands()[1]
    return pa.schema(
        [
            ("key", pa.binary(4 * (rows + 1))),  # uint32 band number, then the band's values
            ("source_file", pa.string()),  # with source_line and id: the row's source order
            ("source_line", pa.int64()),
            ("id", pa.int64()),
        ]
    )


def _signed_candidates_schema(config: NearDedupConfig) -> pa.Schema:
    return CANDIDATES.append(pa.field("signature", pa.binary(4 * config.num_perm)))


# Band keys and signatures are random bytes: fixed-size binary columns, uncompressed and
# without dictionaries, cost no list levels to write or read and no futile encoding.
_RANDOM_BYTES = ("key", "signature")


def _coding(schema: pa.Schema) -> dict:
    """ParquetWriter options for a work file: random-byte columns stored plain, the rest
    zstd; only source_file and part (a few texts) are worth a dictionary."""
    return {
        "compression": {n: "none" if n in _RANDOM_BYTES else "zstd" for n in schema.names},
        "use_dictionary": [n for n in schema.names if n in ("source_file", "part")],
    }


def _part_names(pool: Path) -> list[str]:
    """Input part names by part number (a row id's high bits)."""
    return [p.stem for p in part_files(pool)]


def _candidates(pairs: np.ndarray) -> pa.Table:
    return pa.table([pa.array(pairs[:, 0]), pa.array(pairs[:, 1])], schema=CANDIDATES)


def _write_by_part(table: pa.Table, ids: np.ndarray, names: list[str], out: Path, stem: str):
    """The rows of `table` to `out/<part of ids[i]>/<stem>.parquet`, one file per part
    holding any, keeping their order."""
    parts = ids >> _ROW_BITS
    order = np.argsort(parts, kind="stable")
    bounds = np.searchsorted(parts[order], np.arange(len(names) + 1))
    for number in np.unique(parts):
        rows = pa.array(order[bounds[number] : bounds[number + 1]])
        with atomic_path(out / names[number] / f"{stem}.parquet") as path:
            pq.write_table(table.take(rows), path, **_coding(table.schema))


def _read_folder(folder: Path, schema: pa.Schema) -> pa.Table:
    """All rows of a shuffle folder's files, in file-name order (none: no rows)."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return schema.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=schema) for f in files)


def _rows_of(path: Path, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows `rows` (sorted row numbers) of a signature file, read a row group (a slice of
    `TEXT_SLICE_ROWS`) at a time and only from groups holding one: a task holds what it
    takes, not the part's signatures."""
    file = pq.ParquetFile(path)
    sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    bounds = np.searchsorted(rows, starts)  # group g holds rows[bounds[g] : bounds[g + 1]]
    pieces = [
        file.read_row_group(g, columns=columns).take(
            pa.array(rows[bounds[g] : bounds[g + 1]] - starts[g])
        )
        for g in range(file.num_row_groups)
        if bounds[g + 1] > bounds[g]
    ]
    return pa.concat_tables(pieces) if pieces else file.schema_arrow.empty_table().select(columns)


def _part_signatures(path: Path, ids: np.ndarray) -> np.ndarray:
    """The signatures of row ids `ids` (any order, repeats allowed) of one part, from its
    signature file: (len(ids), num_perm) uint32."""
    rows, inverse = np.unique(ids & _ROW_MASK, return_inverse=True)
    return _words(_rows_of(path, rows, ["signature"]).column("signature"))[inverse]


def _binary(values: np.ndarray) -> pa.FixedSizeBinaryArray:
    """An (n, k) uint32 matrix as a column of 4k-byte values."""
    data = np.ascontiguousarray(values, np.uint32)
    width = pa.binary(data.shape[1] * 4)
    return pa.FixedSizeBinaryArray.from_buffers(width, len(data), [None, pa.py_buffer(data)])


def _words(column) -> np.ndarray:
    """A fixed-size binary column of uint32 values back as an (n, k) matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    k = array.type.byte_width // 4
    if not len(array):  # no data buffer to view
        return np.zeros((0, k), np.uint32)
    data = np.frombuffer(array.buffers()[1], np.uint32, len(array) * k, array.offset * k * 4)
    return data.reshape(len(array), k)


def _source_rank(table: pa.Table, ids: np.ndarray) -> np.ndarray:
    """Each band row's place in source order (source_file, source_line, part, row)."""
    files = table.column("source_file").combine_chunks()
    # Dictionary codes -> the rank of their text, so numpy can sort without the strings;
    # nulls go last, as Arrow's sort (the clusters' order) puts them.
    texts = len(files.dictionary)
    file_rank = np.empty(texts + 1, np.int64)
    file_rank[pc.sort_indices(files.dictionary).to_numpy()] = np.arange(texts)
    file_rank[texts] = texts
    codes = pc.fill_null(files.indices, texts).to_numpy()
    lines = pc.fill_null(table.column("source_line"), np.iinfo(np.int64).max).to_numpy()
    order = np.lexsort((ids, lines, file_rank[codes]))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank
