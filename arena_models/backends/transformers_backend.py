"""Batched chat generation with transformers: for CPUs and small runs.

The model and tokenizer are loaded once per process (a Dask worker keeps one
copy across tasks). Conversations are sorted by prompt length and batched with
left padding, so short prompts do not wait on long ones.
"""

from __future__ import annotations

from functools import lru_cache

from arena_models.backends.base import ChatBackend, Generation, Sampling
from arena_models.local_models import resolve_model_path


@lru_cache(maxsize=2)
def _load(path: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation continues from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    return tokenizer, model


class TransformersBackend(ChatBackend):
    """`path`: a local model folder or `builtin:NAME`; `dtype`: float32 or bfloat16."""

    def __init__(
        self,
        path: str,
        name: str | None = None,
        dtype: str = "float32",
        batch_size: int = 8,
        system_prompt: str | None = None,
    ):
        self.path = path
        self.name = name or path
        self.dtype = dtype
        self.batch_size = batch_size
        self.system_prompt = system_prompt

    def generate(self, conversations: list[list[dict]], sampling: Sampling) -> list[Generation]:
        import torch

        tokenizer, model = _load(resolve_model_path(self.path), self.dtype)
        if self.system_prompt:
            conversations = [
                [{"role": "system", "content": self.system_prompt}, *c] for c in conversations
            ]
        prompts = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]
        lengths = [len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        results: list[Generation | None] = [None] * len(prompts)
        torch.manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = tokenizer(
                [prompts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            sample = sampling.temperature > 0
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    max_new_tokens=sampling.max_tokens,
                    do_sample=sample,
                    temperature=sampling.temperature if sample else None,
                    top_p=sampling.top_p if sample else None,
                    top_k=None,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = output[:, inputs.input_ids.shape[1] :]
            for row, i in enumerate(batch):
                tokens = new[row]
                completion = int((tokens != tokenizer.pad_token_id).sum())
                text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
                results[i] = Generation(
                    text, prompt_tokens=lengths[i], completion_tokens=completion
                )
        return results  # type: ignore[return-value]

    def continuation_probabilities(
        self, conversations: list[list[dict]], prefix: str, options: list[str]
    ) -> tuple[list[list[float]], list[float]]:
        """P(option | conversation, assistant reply starting with `prefix`) for each option,
        renormalised over the options, and the probability mass the options hold at all.

        Options are scored token by token (one batched forward pass per token
        position), so multi-token options such as "10" are exact.
        """
        import torch

        tokenizer, model = _load(resolve_model_path(self.path), self.dtype)
        prompts = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) + prefix
            for c in conversations
        ]
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
                )
                with torch.inference_mode():
                    step = torch.log_softmax(model(**inputs).logits[:, -1, :].float(), -1)
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
