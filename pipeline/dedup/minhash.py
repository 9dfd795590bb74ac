"""Near-duplicate detection with MinHash LSH (datasketch).

In: prompt ids and texts. Out: duplicate clusters (cluster id, member ids,
the member kept) so a user can inspect them before removal, and the set of
ids to drop. Signatures are computed per chunk of rows; banding and the
union-find join run over the compact signature arrays.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.parquet_io import write_parquet_atomic

_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, k: int = 3) -> set[bytes]:
    """Word k-grams of lower-cased text; short texts fall back to their words."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {w.encode() for w in words} or {b""}
    return {" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)}


def signatures(texts: list[str], num_perm: int = 128, seed: int = 1, k: int = 3) -> np.ndarray:
    """MinHash signatures, one uint64 row of `num_perm` values per text."""
    from datasketch import MinHash

    out = np.empty((len(texts), num_perm), dtype=np.uint64)
    for i, text in enumerate(texts):
        mh = MinHash(num_perm=num_perm, seed=seed)
        mh.update_batch(list(shingles(text, k)))
        out[i] = mh.hashvalues
    return out


def duplicate_clusters(
    ids: list[str], sigs: np.ndarray, threshold: float = 0.8, num_perm: int = 128
) -> list[list[int]]:
    """Groups of row indices whose estimated Jaccard similarity reaches `threshold`.

    Candidates come from LSH bands; each candidate pair is verified on the
    signatures so band collisions below the threshold do not merge clusters.
    """
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    buckets: dict[tuple[int, bytes], int] = {}
    for i in range(len(ids)):
        for b in range(bands):
            key = (b, sigs[i, b * rows : (b + 1) * rows].tobytes())
            j = buckets.setdefault(key, i)
            if j != i and find(i) != find(j):
                if float(np.mean(sigs[i] == sigs[j])) >= threshold:
                    parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(find(i), []).append(i)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def near_dedup(
    ids: list[str],
    texts: list[str],
    out_dir: str | Path | None = None,
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 1,
) -> set[str]:
    """Ids to drop (all but the first member of each cluster).

    When `out_dir` is given, writes `clusters.parquet` (cluster, id, text, kept).
    """
    sigs = signatures(texts, num_perm=num_perm, seed=seed)
    clusters = duplicate_clusters(ids, sigs, threshold=threshold, num_perm=num_perm)
    drop: set[str] = set()
    rows = {"cluster": [], "id": [], "text": [], "kept": []}
    for c, members in enumerate(clusters):
        for n, i in enumerate(members):
            rows["cluster"].append(c)
            rows["id"].append(ids[i])
            rows["text"].append(texts[i])
            rows["kept"].append(n == 0)
            if n:
                drop.add(ids[i])
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(pa.table(rows), Path(out_dir) / "clusters.parquet")
    return drop
