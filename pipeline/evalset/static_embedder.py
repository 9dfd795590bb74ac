"""Static embeddings (model2vec): a token-vector lookup and a mean instead of a transformer.

`embed_model: static:SOURCE` selects it, SOURCE being either a model2vec folder (its
config.json says `model_type: model2vec`), used as it is, or a sentence-transformers
folder / `builtin:` model, distilled once into a model2vec folder: every vocabulary
token goes through the transformer, the token vectors are reduced by PCA and weighted
by SIF (model2vec's distillation). The distilled folder is cached under $ARENA_CACHE
(arena_models.local_models.cache_root), named by the source's content hash and the
distillation settings, and written atomically under a file lock, so workers of one
machine distil it once and never read half a folder. Nothing is downloaded.

Encoding is float32 throughout (the token vectors are cast on load, whatever the
folder stores), so the vectors need no float32 re-check; they come out unit length,
one row per text, truncated at the same token count as the transformer's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from arena_models.local_models import BUILTIN_PREFIX, BUILTINS, cache_root, resolve_model_path
from core.errors import UserError
from core.parquet_io import atomic_folder

STATIC_PREFIX = "static:"
# 256 dims: MiniLM's 384 reduced by PCA, model2vec's own default. The PCA keeps most of
# the token vectors' variance and takes out their shared mean direction (which helps a
# static model), and it cuts every later stage's vector cost by a third (Parquet, the
# semantic-dedup index, K-means): a 1M-row pool's vectors are 1.0 GB, not 1.5 GB.
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4  # model2vec's default: token weight a / (a + p(token)), p by Zipf rank
DISTILL_SETTINGS = {"pca_dims": PCA_DIMS, "sif_coefficient": SIF_COEFFICIENT, "dtype": "float32"}
BATCH_ROWS = 1024  # texts tokenised and pooled together


def is_static(model: str) -> bool:
    return model.startswith(STATIC_PREFIX)


def _source(model: str) -> str:
    return model[len(STATIC_PREFIX) :]


@dataclass(frozen=True)
class StaticSource:
    """What a `static:` model names: a ready model2vec folder, or a model to distil from."""

    path: Path
    distil: bool  # False: `path` is a model2vec folder


def _config_of(folder: Path) -> dict | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def check(model: str) -> None:
    """A one-line UserError unless `model` names a usable source (cheap: no model is read)."""
    source = _source(model)
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX) :]
        if name not in BUILTINS:
            raise UserError(
                f"{model}: unknown builtin model {name!r}; known: {', '.join(sorted(BUILTINS))}"
            )
        return
    _folder_source(model, Path(source))


def _folder_source(model: str, folder: Path) -> StaticSource:
    if not folder.is_dir():
        raise UserError(
            f"{model}: no such folder (static:FOLDER takes a model2vec folder or a "
            "sentence-transformers folder to distil; static:builtin:NAME a packaged one)"
        )
    config = _config_of(folder)
    if config is None:
        raise UserError(
            f"{model}: {folder} has no readable config.json, so it is neither a model2vec "
            "folder nor a sentence-transformers folder to distil from"
        )
    return StaticSource(folder, distil=config.get("model_type") != "model2vec")


def resolve(model: str) -> StaticSource:
    check(model)
    return _folder_source(model, Path(resolve_model_path(_source(model))))


def _content_hash(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = tuple(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    return _hash_files(str(folder), stamp)


@lru_cache(maxsize=8)
def _hash_files(folder: str, stamp: tuple) -> str:
    """sha256 over the files' names and bytes (memoised by names, sizes and mtimes)."""
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode() + b"\0")
        with open(Path(folder) / name, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def distilled_dir(model: str, source: Path) -> Path:
    """Where the model2vec folder distilled from `source` with DISTILL_SETTINGS lives: named
    by the source's content (not its path) and the settings, so a changed model or setting
    is distilled again and the same model found elsewhere is not."""
    import model2vec

    key = {"source": _content_hash(source), "model2vec": model2vec.__version__, **DISTILL_SETTINGS}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    builtin = _source(model).startswith(BUILTIN_PREFIX)
    name = _source(model).removeprefix(BUILTIN_PREFIX) if builtin else source.name
    return cache_root() / "static" / f"{name}-{digest}"


def model_dir(model: str) -> Path:
    """The model2vec folder of `model` (`static:...`), distilled first where needed."""
    source = resolve(model)
    if not source.distil:
        return source.path
    target = distilled_dir(model, source.path)
    if (target / "config.json").exists():
        return target
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process distilling it: wait, then reuse
        if not (target / "config.json").exists():
            _distil(source.path, target)
    return target


def _distil(source: Path, target: Path) -> None:
    from model2vec.distill import distill

    with atomic_folder(target) as tmp:  # a reader sees no folder or a whole one
        model = distill(
            str(source),
            pca_dims=PCA_DIMS,
            sif_coefficient=SIF_COEFFICIENT,
            quantize_to=DISTILL_SETTINGS["dtype"],
            trust_remote_code=False,  # the source model's own Python never runs
        )
        model.save_pretrained(tmp)


class StaticEncoder:
    """A loaded model2vec model: `embed(texts, max_tokens)` -> unit float32 rows."""

    def __init__(self, folder: Path):
        from model2vec import StaticModel

        try:
            # float32 token vectors whatever the folder stores: the mean is taken in float32
            self.model = StaticModel.from_pretrained(folder, quantize_to="float32", normalize=True)
        except Exception as error:  # safetensors, tokenizers and json each raise their own
            first = str(error).strip().split("\n")[0]
            raise UserError(
                f"{folder}: not a loadable model2vec folder ({type(error).__name__}: {first})"
            ) from None
        self.folder = folder
        self.width = int(self.model.dim)

    def embed(self, texts: list[str], max_tokens: int) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            max_length=max_tokens,
            batch_size=BATCH_ROWS,
            use_multiprocessing=False,  # a Dask worker is the unit of parallelism
        )
        vectors = np.asarray(vectors, np.float32).reshape(len(texts), self.width)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
        # A text with no known token has no mean: one fixed unit vector for all of them, as a
        # transformer gives every empty text the same vector.
        vectors[norms[:, 0] == 0] = 1 / np.sqrt(self.width)
        return vectors


def describe(model: str) -> dict:
    """What built the vectors, for manifests and reports (reads no model)."""
    source = resolve(model)
    about = {"kind": "static", "model": model, "library": "model2vec"}
    if source.distil:
        return {**about, "distilled_from": _source(model), **DISTILL_SETTINGS}
    return {**about, "folder": str(source.path)}
