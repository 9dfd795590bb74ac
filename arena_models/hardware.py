"""Whether this machine computes bfloat16 natively, for the `auto` dtypes.

Where it does (CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX), bfloat16
runs 2-3x float32 for our small models. Where it does not (an AVX2-only CPU),
torch emulates it: MiniLM embedded 3-6x slower than in float32 on such a CPU.
"""

from __future__ import annotations


def native_bfloat16(device: str = "cpu") -> bool:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
