"""Battle data for the ratings tests: simulated arenas (the real LLMFAO human votes are the
session fixture `llmfao_votes`, tests/conftest.py, which `arena elo`'s tests share)."""

import numpy as np
import pandas as pd


def simulate(
    strengths: dict[str, float], battles: int, seed: int = 0, tie_share: float = 0.0
) -> pd.DataFrame:
    """Battles between random pairs; P(a wins) follows Bradley-Terry on the Elo scale."""
    rng = np.random.default_rng(seed)
    models = list(strengths)
    elo = np.array([strengths[m] for m in models])
    a = rng.integers(0, len(models), battles)
    b = (a + rng.integers(1, len(models), battles)) % len(models)
    p_a = 1 / (1 + 10 ** ((elo[b] - elo[a]) / 400))
    u = rng.random(battles)
    winner = np.where(
        u < tie_share, "tie", np.where(rng.random(battles) < p_a, "model_a", "model_b")
    )
    return pd.DataFrame(
        {"model_a": np.array(models)[a], "model_b": np.array(models)[b], "winner": winner}
    )
