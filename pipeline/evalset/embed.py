"""EmbedConversations: conversation parts -> the same rows plus a normalised `embedding`.

The sentence-transformers model is loaded once per worker process and kept.
Texts are sorted by token length and batched under a token budget rather than a
fixed row count: long prompts in batches of 128 ran ~2x slower per row than in
small ones (the activations leave the cache), while short prompts want big
batches. dtype "auto" runs the model in bfloat16 where the hardware computes it
natively (a CUDA GPU, or a CPU with AVX512-BF16 or AMX): there MiniLM embeds
2.1-2.3x (short prompts) to 2.9-3.3x (real prompts) faster than a plain float32
encode, with cosine >= 0.9998 to the float32 vectors. Elsewhere it runs float32:
on an AVX2-only CPU, emulated bfloat16 was 3-6x slower than float32. The vectors
are stored in float32, re-normalised, so later stages never re-embed and cosine
similarity is a dot product; each part's footer says which dtype made them
(`embedded_dtype`), so semantic dedup knows which decisions need a float32 look.

`model: static:SOURCE` embeds with a static model2vec model instead (see
pipeline.evalset.static_embedder): float32 always, so its parts say float32 and need
no re-check, and the stage's manifest says which embedder made the vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from arena_models.hardware import native_bfloat16
from arena_models.local_models import resolve_model_path
from core.defaults import EMBED_MODEL
from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import part_files, read_rows, require_columns, write_parquet_atomic
from core.schemas import prompt_text
from core.stage import FolderStage, PartResult, Task
from core.worker_cache import ENCODER, load_on_worker
from pipeline.evalset import static_embedder

DTYPES = ("auto", "float32", "bfloat16")
DTYPE_KEY = b"arena.embedding_dtype"  # Parquet schema metadata of every embedded part
# Embedded parts are written in row groups of this many rows, so a reader wanting a few
# rows' vectors back (semantic dedup's float32 look) decodes ~1.5 MB, not the part.
VECTOR_ROW_GROUP = 1024


@dataclass(frozen=True)
class EmbedConfig:
    model: str = EMBED_MODEL
    dtype: str = "auto"  # bfloat16 where native (GPU, AVX512-BF16, AMX), else float32
    batch_size: int = 128  # most rows in a batch (short texts)
    tokens_per_batch: int = 2048  # most padded tokens in a batch (long texts)
    max_seq_length: int = 256
    rows_per_task: int = 1024  # a big part is split so every worker gets a share

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise UserError(f"embed dtype {self.dtype!r}: expected one of {', '.join(DTYPES)}")
        if self.static:
            static_embedder.check(self.model)
            if self.dtype == "bfloat16":
                raise UserError(
                    f"embed dtype bfloat16 with {self.model}: a static embedder computes in "
                    "float32 (use auto or float32)"
                )
            # auto means float32 here, on every machine: footers, re-check and config say so
            object.__setattr__(self, "dtype", "float32")
        elif Path(self.model).is_absolute() and not Path(self.model).exists():
            # Else the workers fail on it once the cluster has started.
            raise UserError(f"embed model {self.model}: no such folder")

    @property
    def static(self) -> bool:
        return static_embedder.is_static(self.model)


def encoder_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolved_dtype(dtype: str) -> str:
    """The dtype `auto` stands for on this machine: bfloat16 where it is native."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if native_bfloat16(encoder_device()) else "float32"


def load_encoder(model: str, dtype: str, max_seq_length: int):
    """The sentence-transformers model (a StaticEncoder for `static:`), loaded once per
    worker process; a static model is distilled first if its folder is not cached yet."""
    key = (ENCODER, model, dtype, max_seq_length)
    if static_embedder.is_static(model):
        build = lambda: static_embedder.StaticEncoder(static_embedder.model_dir(model))  # noqa: E731
    else:
        build = lambda: _build_encoder(model, dtype, max_seq_length)  # noqa: E731
    return load_on_worker(key, build, limit=2)


def _build_encoder(model: str, dtype: str, max_seq_length: int):
    import torch
    from sentence_transformers import SentenceTransformer

    # Embedders never run a model repo's own Python (no roster opt-in here).
    encoder = SentenceTransformer(
        resolve_model_path(model), device=encoder_device(), trust_remote_code=False
    )
    encoder.max_seq_length = max_seq_length
    if resolved_dtype(dtype) == "bfloat16":
        encoder = encoder.to(torch.bfloat16)
    return encoder


def embedded_dtype(part: Path, default: str) -> str:
    """The dtype recorded in an embedded part's footer; `default` for parts written without."""
    metadata = pq.read_schema(part).metadata or {}
    return metadata[DTYPE_KEY].decode() if DTYPE_KEY in metadata else default


def embedding_width(encoder) -> int:
    if isinstance(encoder, static_embedder.StaticEncoder):
        return encoder.width
    # sentence-transformers 6 renamed get_sentence_embedding_dimension
    width = getattr(encoder, "get_embedding_dimension", None)
    return (width or encoder.get_sentence_embedding_dimension)()


def token_batches(lengths: np.ndarray, tokens_per_batch: int, max_rows: int) -> list[np.ndarray]:
    """Row indices in batches of similar length whose padded size stays within the budget."""
    order = np.argsort(-lengths, kind="stable")  # longest first: a batch's first row is its widest
    batches, start = [], 0
    while start < len(order):
        rows = max(1, min(max_rows, tokens_per_batch // max(int(lengths[order[start]]), 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def embed_texts(texts: list[str], config: EmbedConfig) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    encoder = load_encoder(config.model, config.dtype, config.max_seq_length)
    if isinstance(encoder, static_embedder.StaticEncoder):
        return encoder.embed(texts, config.max_seq_length)  # no batching by length: linear cost
    ids = encoder.tokenizer(texts, truncation=True, max_length=config.max_seq_length)["input_ids"]
    lengths = np.fromiter((len(row) for row in ids), np.int64, len(ids))
    vectors = np.empty((len(texts), embedding_width(encoder)), np.float32)
    for batch in token_batches(lengths, config.tokens_per_batch, config.batch_size):
        vectors[batch] = (
            encoder.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            .float()
            .cpu()
            .numpy()
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def vectors_of(table: pa.Table, column: str = "embedding") -> np.ndarray:
    """The fixed-size-list column as a (rows, dim) float32 matrix, without copies where possible."""
    col = table.column(column).combine_chunks()
    # The width comes from the type, so an empty part is (0, dim) like any other.
    return col.values.to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)


class EmbedConversations(FolderStage):
    name = "embed"
    needs = ("prompt_id", "messages")
    makes = ("embedding",)

    def __init__(self, pool: Path, out: Path, config: EmbedConfig = EmbedConfig()):
        super().__init__(pool, out, config)

    def config_dict(self) -> dict:
        config = super().config_dict()
        if self.config.static:  # other distillation settings make other vectors
            config["static"] = static_embedder.DISTILL_SETTINGS
        return config

    def plan(self) -> list[Task]:
        tasks, size = [], self.config.rows_per_task
        for path in part_files(self.pool):
            rows = pq.ParquetFile(path).metadata.num_rows
            for k, start in enumerate(range(0, max(rows, 1), size)):
                tasks.append(
                    Task(f"{path.stem}-{k:04d}", {"path": str(path), "start": start, "rows": size})
                )
        return tasks

    def process(self, task: Task) -> PartResult:
        table = read_rows(task.params["path"], task.params["start"], task.params["rows"])
        require_columns(table.schema, self.needs, task.params["path"])
        texts = [prompt_text(m) for m in table.column("messages").to_pylist()]
        if texts:
            vectors = embed_texts(texts, self.config)
        else:  # an empty part keeps the model's width, so every part has one schema
            encoder = load_encoder(self.config.model, self.config.dtype, self.config.max_seq_length)
            vectors = np.zeros((0, embedding_width(encoder)), np.float32)
        dim = vectors.shape[1]
        column = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).ravel()), dim
        )
        if "embedding" in table.column_names:
            table = table.drop_columns(["embedding"])
        table = table.append_column("embedding", column)
        dtype = resolved_dtype(self.config.dtype)
        metadata = {**(table.schema.metadata or {}), DTYPE_KEY: dtype.encode()}
        table = table.replace_schema_metadata(metadata)
        write_parquet_atomic(table, self.out / f"{task.name}.parquet", VECTOR_ROW_GROUP)
        return PartResult(
            task.name,
            table.num_rows,
            table.num_rows,
            content_hash=table_hash(table),
            stats={"dim": dim, "dtype": dtype},
        )

    def summary(self, results: list[PartResult]) -> dict:
        return {"embedder": describe_embedder(self.config, results)}


def describe_embedder(config: EmbedConfig, results: list[PartResult]) -> dict:
    """Which embedder made a folder's vectors: kind, model, width and the dtypes its parts
    were computed in (workers may differ), for the manifest and the eval-set report."""
    if config.static:
        about = static_embedder.describe(config.model)
    else:
        about = {"kind": "transformer", "model": config.model, "library": "sentence-transformers"}
    dims = sorted({r.stats["dim"] for r in results if "dim" in r.stats})
    dtypes = sorted({r.stats.get("dtype", "unrecorded") for r in results})
    return {**about, "dim": dims[0] if len(dims) == 1 else dims, "dtypes": dtypes}
