"""Diverse, Hard-candidate, Hard and Mix selection (WizardArena).

Every row gets a seeded pseudo-random key from its prompt_id, so a draw depends
only on the seed and the rows, never on partitioning or worker count.
- Diverse: the first `per_cluster` rows of each cluster by key (paper: 2 of 500).
- Hard candidates: the first `candidates_per_cluster` by another key (paper: 20).
- Hard: the `top` candidates by judged difficulty (paper: 1,000); unscored
  candidates (judge errors) are never chosen.
- Mix: Diverse + Hard, each row once, `subset` says where it came from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from core.schemas import short_hash

INDEX_COLUMNS = ["prompt_id", "cluster"]


def _key(prompt_ids: pd.Series, seed: int, salt: str) -> pd.Series:
    return prompt_ids.map(lambda p: int(short_hash(f"{seed}:{salt}:{p}", 8), 16))


def cluster_index(clustered: Path) -> pd.DataFrame:
    """prompt_id and cluster of every row: small, whatever the pool size."""
    frame = ds.dataset(str(clustered), format="parquet").to_table(columns=INDEX_COLUMNS).to_pandas()
    return frame.drop_duplicates("prompt_id")


def draw_per_cluster(index: pd.DataFrame, per_cluster: int, seed: int, salt: str) -> pd.DataFrame:
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


def fetch_rows(clustered: Path, prompt_ids) -> pd.DataFrame:
    """Full rows (with embeddings) of the chosen prompt_ids."""
    dataset = ds.dataset(str(clustered), format="parquet")
    table = dataset.to_table(filter=ds.field("prompt_id").isin(list(prompt_ids)))
    return table.to_pandas().drop_duplicates("prompt_id")


def mix(diverse: pd.DataFrame, hard: pd.DataFrame) -> pd.DataFrame:
    both = set(diverse.prompt_id) & set(hard.prompt_id)
    rows = pd.concat(
        [diverse.assign(subset="diverse"), hard.assign(subset="hard")], ignore_index=True
    )
    rows = rows.drop_duplicates("prompt_id", keep="last")  # keep the hard row: it has the score
    rows.loc[rows.prompt_id.isin(both), "subset"] = "both"
    return rows.reset_index(drop=True)
