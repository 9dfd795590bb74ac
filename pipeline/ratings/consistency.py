"""How well a leaderboard agrees with a reference one (the Arena-Hard metrics the paper uses).

- Spearman: rank correlation of the ratings of the models both boards share.
- Separability: share of model pairs whose 95% CIs do not overlap on our board.
- Agreement with CI: over pairs the reference separates (non-overlapping CIs, or
  any rating difference when it has no CIs), +1 where we separate them in the
  same order, -1 where we separate them in the opposite order, 0 where we do not
  separate them; averaged.
- Brier: over the same pairs, the squared error of our predicted probability
  that the reference's better model wins.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UserError


def read_reference(path: Path) -> pd.DataFrame:
    """A reference board: columns model and rating (or score / elo), optional lower, upper."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such reference file")
    table = (
        pd.read_parquet(path)
        if path.suffix == ".parquet"
        else pd.read_json(path, lines=True)
        if path.suffix in (".jsonl", ".json")
        else pd.read_csv(path)
    )
    rating = next((c for c in ("rating", "elo", "score", "arena_score") if c in table), None)
    if "model" not in table or rating is None:
        raise UserError(f"{path}: a reference board needs columns model and rating")
    out = pd.DataFrame({"model": table["model"].astype(str), "rating": table[rating].astype(float)})
    if {"lower", "upper"} <= set(table.columns):
        out["lower"], out["upper"] = table["lower"].astype(float), table["upper"].astype(float)
    return out


def _separated(lo_i, hi_i, lo_j, hi_j) -> int:
    """+1 if i is confidently above j, -1 if below, 0 if the intervals overlap."""
    return 1 if lo_i > hi_j else -1 if lo_j > hi_i else 0


def consistency(ours: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """ours: model, rating, lower, upper. Returns the metrics and the models compared."""
    from scipy.stats import spearmanr

    merged = ours.merge(reference, on="model", suffixes=("", "_ref"))
    if len(merged) < 2:
        raise UserError("fewer than two models are on both this board and the reference")
    has_ci = "lower_ref" in merged
    pairs = list(combinations(range(len(merged)), 2))
    separable = agreement = 0
    brier, judged = [], 0
    for i, j in pairs:
        r, s = merged.iloc[i], merged.iloc[j]
        mine = _separated(r.lower, r.upper, s.lower, s.upper)
        separable += mine != 0
        if has_ci:
            ref = _separated(r.lower_ref, r.upper_ref, s.lower_ref, s.upper_ref)
        else:
            ref = int(np.sign(r.rating_ref - s.rating_ref))
        if ref == 0:
            continue
        judged += 1
        agreement += mine * ref
        p_i = 1 / (1 + 10 ** ((s.rating - r.rating) / 400))
        brier.append((p_i - (1.0 if ref > 0 else 0.0)) ** 2)
    return {
        "models_compared": len(merged),
        "models_only_here": sorted(set(ours.model) - set(reference.model)),
        "models_only_in_reference": sorted(set(reference.model) - set(ours.model)),
        "spearman": float(spearmanr(merged.rating, merged.rating_ref).statistic),
        "separability": separable / len(pairs),
        "agreement_with_ci": agreement / judged if judged else float("nan"),
        "brier": float(np.mean(brier)) if brier else float("nan"),
        "pairs": len(pairs),
        "pairs_separated_by_reference": judged,
    }
