"""Eval-set recipes (YAML) and the embedded sample pool."""

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"


def sample_pool_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.jsonl"))
