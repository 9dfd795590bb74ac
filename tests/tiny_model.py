"""A tiny real model for plumbing tests: Llama architecture with SmolLM2's tokenizer and
chat template, 2 layers and a hidden size of 128, random weights from a fixed seed, saved
as an ordinary checkpoint (safetensors + config + tokenizer).

vLLM, transformers and trl load it exactly as they load SmolLM2, in a fraction of the
time and memory; only the weights are small (vLLM's and trl's own suites work this way).
What it writes is noise, so tests of a judge's or a model's behaviour keep SmolLM2."""

from __future__ import annotations

from pathlib import Path

SEED = 0
# head_dim 64, as SmolLM2's: every CPU attention kernel of vLLM takes it.
SHAPE = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
    max_position_embeddings=2048,
    # Wide enough that greedy decoding writes varied tokens, not one token over and over.
    initializer_range=0.1,
)


def build_tiny_llama(target: Path) -> Path:
    """Write the tiny checkpoint to the new folder `target` (the session fixture's own,
    so nothing else writes there); returns `target`."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from arena_models.local_models import smollm2_dir

    source = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    reference = AutoConfig.from_pretrained(source, trust_remote_code=False)
    config = LlamaConfig(
        **SHAPE,
        vocab_size=reference.vocab_size,
        bos_token_id=reference.bos_token_id,
        eos_token_id=reference.eos_token_id,
        pad_token_id=reference.pad_token_id,
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.eos_token_id = reference.eos_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return Path(target)
