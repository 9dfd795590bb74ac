"""Bradley-Terry on aggregated counts with choix, on the Elo scale.

The fit works on the models x models comparison matrix, so its cost does not
depend on the number of battles. A small regulariser (choix's `alpha`, a
pseudo-count on every pair of the LSR chain) keeps ratings finite when a model
is unbeaten or the comparison graph is not strongly connected; both cases are
reported as warnings, since such ratings rest on the regulariser, not on data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.ratings.batched_newton import fit_bradley_terry_batch

ELO_PER_NAT = 400 / math.log(10)  # 400 Elo points per factor 10 in the odds


@dataclass(frozen=True)
class Anchor:
    """Where the scale sits: the mean at `value`, or model `model` at `value`."""

    model: str | None = None
    value: float = 1000.0

    @classmethod
    def parse(cls, text: str | None) -> Anchor:
        """'mean', 'mean=1000' or 'MODEL=1100'."""
        if not text or text == "mean":
            return cls()
        name, sep, value = text.rpartition("=")
        if not sep:
            raise ValueError(f"anchor {text!r}: expected mean, mean=VALUE or MODEL=VALUE")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not np.isfinite(number):
            raise ValueError(f"anchor {text!r}: the value must be a finite number")
        return cls(None if name == "mean" else name, number)

    def apply(self, elo: np.ndarray, models: list[str]) -> np.ndarray:
        """Shift ratings (one row per round, or a single vector) onto the anchor."""
        if self.model is None:
            offset = elo.mean(axis=-1, keepdims=True)
        else:
            offset = elo[..., [models.index(self.model)]]
        return elo - offset + self.value


def fit_bradley_terry(
    comp: np.ndarray, alpha: float = 1e-4, initial: np.ndarray | None = None
) -> np.ndarray:
    """Log-strengths (natural scale, mean zero) maximising the BT likelihood of `comp`:
    Newton's method on choix's ILSR objective (batched_newton.py; numpy only, so `arena elo`
    does not pay choix's second of scipy imports), choix itself where Newton does not converge."""
    n = comp.shape[0]
    if n < 2:
        return np.zeros(n)
    start = np.zeros(n) if initial is None else initial
    theta, converged = fit_bradley_terry_batch(comp[None], alpha, start, max_iter=100)
    if converged[0]:
        return theta[0]
    return fit_with_choix(comp, alpha, initial)


def fit_with_choix(
    comp: np.ndarray, alpha: float = 1e-4, initial: np.ndarray | None = None
) -> np.ndarray:
    """choix's ILSR fit of `comp`: the reference the Newton fits are tested against."""
    import choix

    n = comp.shape[0]
    if n < 2:
        return np.zeros(n)
    try:
        return choix.ilsr_pairwise_dense(
            comp, alpha=alpha, initial_params=initial, max_iter=1000, tol=1e-10
        )
    except RuntimeError:  # slow convergence on near-degenerate data: a looser tolerance still lands
        return choix.ilsr_pairwise_dense(
            comp, alpha=alpha, initial_params=initial, max_iter=5000, tol=1e-7
        )


def data_warnings(comp: np.ndarray, models: list[str]) -> list[str]:
    """Cases where the maximum-likelihood ratings do not exist without the regulariser."""
    warnings = []
    played = (comp + comp.T).sum(1)
    lost = comp.sum(0)
    won = comp.sum(1)
    for i, m in enumerate(models):
        if played[i] > 0 and lost[i] == 0:
            warnings.append(f"{m} never lost: its rating is bounded only by the regulariser")
        elif played[i] > 0 and won[i] == 0:
            warnings.append(f"{m} never won: its rating is bounded only by the regulariser")
    n_parts, labels = strong_components(comp > 0)
    if n_parts > 1 and len(models) > 1:
        groups = [[m for m, g in zip(models, labels) if g == k] for k in range(n_parts)]
        if len(max(groups, key=len)) < len(models):
            small = sorted(groups, key=len)[: min(3, n_parts)]
            shown = "; ".join(", ".join(g[:5]) + (" ..." if len(g) > 5 else "") for g in small)
            warnings.append(
                f"the comparison graph splits into {n_parts} strongly connected groups "
                f"(smallest: {shown}); ratings across groups rest on the regulariser"
            )
    return warnings


def strong_components(edges: np.ndarray) -> tuple[int, np.ndarray]:
    """(count, label per node) of the strongly connected components of a directed graph given
    as a boolean adjacency matrix: two nodes share one when each reaches the other. The
    reachability closure by repeated squaring costs O(n^3 log n), milliseconds at the few
    hundred models of an arena, and spares `arena elo` scipy's import."""
    n = len(edges)
    reach = (edges | np.eye(n, dtype=bool)).astype(np.float32)
    while True:
        wider = ((reach @ reach) > 0).astype(np.float32)
        if np.array_equal(wider, reach):
            break
        reach = wider
    mutual = (reach > 0) & (reach > 0).T
    first = mutual.argmax(axis=1)  # the lowest node of each one's component names it
    names, labels = np.unique(first, return_inverse=True)
    return len(names), labels


def to_elo(theta: np.ndarray) -> np.ndarray:
    return theta * ELO_PER_NAT
