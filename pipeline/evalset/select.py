"""Diverse, Hard-candidate, Hard and Mix selection (WizardArena).

Every row gets a seeded pseudo-random key from its prompt_id, so a draw depends
only on the seed and the rows, never on partitioning or worker count.
- Diverse: the first `per_cluster` rows of each cluster by key (paper: 2 of 500).
- Hard candidates: the first `candidates_per_cluster` by another key (paper: 20).
  Both are drawn on the workers (pipeline/evalset/draws.py) with `first_per_cluster`.
- Hard: the `top` candidates by judged difficulty (paper: 1,000); unscored
  candidates (judge errors) are never chosen.
- Mix: Diverse + Hard, each row once, `subset` says where it came from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schemas import short_hash

DIVERSE, HARD = "diverse", "hard"  # the draws' key salts


def _key(prompt_ids: pd.Series, seed: int, salt: str) -> pd.Series:
    return prompt_ids.map(lambda p: int(short_hash(f"{seed}:{salt}:{p}", 8), 16))


def draw_keys(prompt_ids: pd.Series, seed: int, salt: str) -> np.ndarray:
    """`_key` as unsigned 64-bit integers (the keys are 8-byte hashes), for Arrow files."""
    return np.asarray(_key(prompt_ids, seed, salt), dtype=np.uint64)


def first_per_cluster(rows: pd.DataFrame, per_cluster: int, key: str) -> pd.DataFrame:
    """The first `per_cluster` rows of each cluster by `key`, equal keys in pool order
    (`part`, `row`): what `draw_per_cluster` picks from the whole pool in its order."""
    ordered = rows.sort_values(["cluster", key, "part", "row"])
    return ordered.groupby("cluster", sort=True).head(per_cluster)


def draw_per_cluster(index: pd.DataFrame, per_cluster: int, seed: int, salt: str) -> pd.DataFrame:
    """A draw from an index (prompt_id, cluster) held in memory, in pool order: small pools
    and benchmarks; a build draws on the workers (draws.py), with the same result."""
    keyed = index.assign(_key=_key(index.prompt_id, seed, salt))
    drawn = keyed.sort_values(["cluster", "_key"]).groupby("cluster", sort=True).head(per_cluster)
    return drawn.drop(columns="_key").reset_index(drop=True)


def top_by_difficulty(scored: pd.DataFrame, top: int, seed: int) -> pd.DataFrame:
    """The `top` scored rows by difficulty; equal scores ordered by the seeded key."""
    valid = scored[scored.difficulty.notna()].assign(
        _key=lambda d: _key(d.prompt_id, seed, "hard-tie")
    )
    return (
        valid.sort_values(["difficulty", "_key"], ascending=[False, True])
        .head(top)
        .drop(columns="_key")
    )


def mix(diverse: pd.DataFrame, hard: pd.DataFrame) -> pd.DataFrame:
    both = set(diverse.prompt_id) & set(hard.prompt_id)
    rows = pd.concat(
        [diverse.assign(subset="diverse"), hard.assign(subset="hard")], ignore_index=True
    )
    rows = rows.drop_duplicates("prompt_id", keep="last")  # keep the hard row: it has the score
    rows.loc[rows.prompt_id.isin(both), "subset"] = "both"
    return rows.reset_index(drop=True)
