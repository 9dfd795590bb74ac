"""Batched chat generation with transformers: for CPUs, small runs and token probabilities.

The model and tokenizer are loaded once per process and config (the worker
cache keeps one copy across tasks). Conversations are rendered with the tokenizer's
chat template (or an override), sorted by prompt length and batched with left
padding, so short prompts do not wait on long ones. A constraint (regex or JSON
schema) is enforced by xgrammar's logits processor for transformers, its grammar
compiled once per process. dtype auto is bfloat16 on a
CPU that computes it natively (AVX512-BF16, AMX: about 1.6x the tokens/s of
float32 for SmolLM2-135M) and float32 on one that does not (on an AVX2 CPU
emulated bfloat16 took 2x as long as float32), float16 on a GPU.
"""

from __future__ import annotations

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
from core.worker_cache import GRAMMAR, TRANSFORMERS_MODEL, load_on_worker

DTYPES = ("auto", "bfloat16", "float16", "float32")


def load_kwargs(dtype: str, trust_remote_code: bool = False) -> tuple[dict, dict]:
    """(tokenizer, model) `from_pretrained` keywords (pure: tests read them without a
    model). trust_remote_code is always passed, False unless the roster entry sets it."""
    trust = {"trust_remote_code": bool(trust_remote_code)}
    return trust, {**trust, "dtype": dtype}


def _load(path: str, dtype: str, device: str = "cpu", trust_remote_code: bool = False):
    """(tokenizer, model) for one config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_kwargs, model_kwargs = load_kwargs(dtype, trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(path, **tokenizer_kwargs)
    tokenizer.padding_side = "left"  # generation continues from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_kwargs["dtype"] = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
    model.to(device).eval()
    return tokenizer, model


def _compile(tokenizer, vocab_size: int, constraint: Constraint):
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    compiler = xgrammar.GrammarCompiler(info)
    if constraint.kind == "regex":
        return compiler.compile_regex(constraint.pattern)
    # Compact JSON: whitespace between fields only spends the reply's token budget.
    return compiler.compile_json_schema(constraint.pattern, any_whitespace=False)


def _resolve_dtype(dtype: str, device: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device != "cpu":
        return "float16"
    return "bfloat16" if native_bfloat16("cpu") else "float32"


class TransformersBackend(ChatBackend):
    """`path`: a local model folder or `builtin:NAME`; `dtype`: auto (see above),
    bfloat16, float16 or float32; `chat_template`: a Jinja template replacing the
    tokenizer's; `system_prompt`: put first in every conversation; `trust_remote_code`:
    let the model folder run its own Python (roster opt-in only)."""

    constraint_kinds = ("regex", "json")  # xgrammar

    def __init__(
        self,
        path: str,
        name: str | None = None,
        dtype: str = "auto",
        batch_size: int = 8,
        system_prompt: str | None = None,
        chat_template: str | None = None,
        device: str = "auto",
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
    ):
        self.path = path
        self.name = name or path
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.system_prompt = system_prompt
        self.chat_template = chat_template
        self.max_model_len = max_model_len
        self.trust_remote_code = trust_remote_code

    def check(self) -> None:
        """Before any cluster: the weights are reachable (offline: a folder or cached)."""
        require_local(self.path, self.name)

    def _model(self):
        import torch

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = _resolve_dtype(self.dtype, device)
        path = resolve_model_path(self.path)
        # A worker keeps two models at most (a battle model and the judge).
        trust = self.trust_remote_code
        return load_on_worker(
            (TRANSFORMERS_MODEL, path, dtype, device, trust),
            lambda: _load(path, dtype, device, trust),
            limit=2,
        )

    def _grammar(self, constraint: Constraint):
        """The compiled grammar of a constraint for this model's tokenizer (seconds to
        compile a bounded regex, so once per process)."""
        tokenizer, model = self._model()
        path = resolve_model_path(self.path)
        return load_on_worker(
            (GRAMMAR, path, constraint.kind, constraint.pattern),
            lambda: _compile(tokenizer, model.config.vocab_size, constraint),
            limit=4,
        )

    def render(self, conversations: list[list[dict]]) -> list[str]:
        """Prompt strings, as the model sees them, ending with the assistant header."""
        tokenizer, _ = self._model()
        return [
            tokenizer.apply_chat_template(
                c, tokenize=False, add_generation_prompt=True, chat_template=self.chat_template
            )
            for c in with_system_prompt(conversations, self.system_prompt)
        ]

    def generate(
        self,
        conversations: list[list[dict]],
        sampling: Sampling,
        constraint: Constraint | None = None,
    ) -> list[Generation]:
        import torch

        tokenizer, model = self._model()
        grammar = self._grammar(constraint) if constraint else None
        prompts = self.render(conversations)
        ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        limit = self.max_model_len or getattr(model.config, "max_position_embeddings", None)
        results: list[Generation | None] = [None] * len(prompts)
        runnable = []
        for i, tokens in enumerate(ids):
            if limit and len(tokens) + 1 > limit:
                results[i] = failed(f"prompt has {len(tokens)} tokens; the model takes {limit}")
            else:
                runnable.append(i)
        order = sorted(runnable, key=lambda i: len(ids[i]))
        eos = _eos_ids(model, tokenizer)
        torch.manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            longest = max(len(ids[i]) for i in batch)
            max_new = (
                sampling.max_tokens if not limit else min(sampling.max_tokens, limit - longest)
            )
            try:
                outputs = self._generate_batch(
                    tokenizer, model, [prompts[i] for i in batch], sampling, max_new, grammar
                )
            except (RuntimeError, ValueError) as err:  # e.g. out of memory: fail these items only
                for i in batch:
                    results[i] = failed(f"{type(err).__name__}: {err}")
                continue
            for row, i in enumerate(batch):
                tokens = outputs[row].tolist()
                stop = next((k for k, t in enumerate(tokens) if t in eos), None)
                answer = tokens if stop is None else tokens[:stop]
                results[i] = Generation(
                    tokenizer.decode(answer, skip_special_tokens=True).strip(),
                    prompt_tokens=len(ids[i]),
                    completion_tokens=len(answer),
                    finish_reason="length" if stop is None else "stop",
                )
        return results  # type: ignore[return-value]

    @staticmethod
    def _generate_batch(
        tokenizer, model, prompts: list[str], sampling: Sampling, max_new: int, grammar=None
    ):
        import torch

        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(model.device)
        sample = sampling.temperature > 0
        processors = None
        if grammar is not None:
            from xgrammar.contrib.hf import LogitsProcessor

            # One matcher per row; a processor serves one generate() call only.
            processors = [LogitsProcessor([grammar] * len(prompts))]
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new,
                do_sample=sample,
                temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=processors,
            )
        return output[:, inputs.input_ids.shape[1] :].cpu()

    def continuation_probabilities(
        self, conversations: list[list[dict]], prefix: str, options: list[str]
    ) -> tuple[list[list[float]], list[float]]:
        """P(option | conversation, assistant reply starting with `prefix`) for each option,
        renormalised over the options, and the probability mass the options hold at all.

        Options are scored token by token (one batched forward pass per token
        position), so multi-token options such as "10" are exact.
        """
        import torch

        tokenizer, model = self._model()
        prompts = [p + prefix for p in self.render(conversations)]
        option_ids = [tokenizer(o, add_special_tokens=False).input_ids for o in options]
        # One forward pass per distinct option prefix: ("",) for every first token, ("1",) for "10"...
        contexts = sorted({tuple(ids[:j]) for ids in option_ids for j in range(len(ids))}, key=len)
        log_probs = torch.zeros(len(prompts), len(options))
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            rows = slice(start, start + len(batch))
            for context in contexts:
                suffix = tokenizer.decode(list(context))
                inputs = tokenizer(
                    [b + suffix for b in batch],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                ).to(model.device)
                with torch.inference_mode():
                    step = torch.log_softmax(model(**inputs).logits[:, -1, :].float(), -1).cpu()
                for k, ids in enumerate(option_ids):
                    if len(ids) > len(context) and tuple(ids[: len(context)]) == context:
                        log_probs[rows, k] += step[:, ids[len(context)]]
        # A multi-token option shares its first token with a shorter one ("1" and "10"):
        # P("1" alone) = P(first "1") - P("10").
        probs = log_probs.exp()
        for k, ids in enumerate(option_ids):
            longer = [
                j for j, o in enumerate(option_ids) if len(o) > len(ids) and o[: len(ids)] == ids
            ]
            for j in longer:
                probs[:, k] = (probs[:, k] - probs[:, j]).clamp(min=0)
        mass = probs.sum(1)
        normalised = probs / mass.clamp(min=1e-12)[:, None]
        return normalised.tolist(), mass.tolist()


def _eos_ids(model, tokenizer) -> set[int]:
    """Every token id that ends an answer (generation config, tokenizer, pad)."""
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for extra in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        if extra is not None:
            ids.add(extra)
    return ids
