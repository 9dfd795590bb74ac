"""Eval-set recipes (YAML), the embedded sample pool, and labelled answer pairs."""

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"
# 653 answer pairs with the crowd's votes (LLMFAO): how far to trust a judge.
LABELLED_PAIRS = Path(__file__).parent / "judging" / "llmfao_pairs_dev.jsonl"


def sample_pool_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.jsonl"))
