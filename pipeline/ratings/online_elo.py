"""Online Elo in battle order (FastChat's classic leaderboard): k=4, base 10, scale 400.

Unlike Bradley-Terry it depends on the order of battles, so it needs the
battles themselves, streamed in file order, not the pair counts.
"""

from __future__ import annotations

import numpy as np

SCORE_A = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def online_elo(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    models: list[str],
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
) -> np.ndarray:
    """Ratings after replaying the battles in order; a, b are indices into `models`."""
    rating = np.full(len(models), initial)
    score = np.array([SCORE_A[o] for o in outcome])
    for a, b, s in zip(model_a.tolist(), model_b.tolist(), score.tolist()):
        expected = 1.0 / (1.0 + base ** ((rating[b] - rating[a]) / scale))
        rating[a] += k * (s - expected)
        rating[b] -= k * (s - expected)
    return rating
