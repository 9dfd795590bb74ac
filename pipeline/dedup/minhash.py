"""Near-duplicate detection with MinHash LSH (datasketch).

In: prompt ids and texts. Out: duplicate clusters, groups of rows whose first member
is kept. Signatures are computed per chunk of rows; banding and the union-find join run
over the compact signature arrays.

`duplicate_clusters` does it all in one process: the rule's reference, which the tests
hold the distributed stages to; the pieces below it (band keys, their buckets, pairs with a group's first
row, connected rows) are what the distributed stages of pipeline.dedup.near use, and
give the same clusters.
"""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, k: int = 3) -> set[bytes]:
    """Word k-grams of lower-cased text; short texts fall back to their words."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {w.encode() for w in words} or {b""}
    return {" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)}


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): datasketch's choice, false positives and negatives weighed
    equally."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def signatures(texts: list[str], num_perm: int = 128, seed: int = 1, k: int = 3) -> np.ndarray:
    """MinHash signatures, one uint64 row of `num_perm` values per text."""
    from datasketch import MinHash

    out = np.empty((len(texts), num_perm), dtype=np.uint64)
    # The permutations depend on (num_perm, seed) alone: drawn once, not once a text,
    # which took most of the time.
    first = MinHash(num_perm=num_perm, seed=seed)
    same = {"permutations": first.permutations, "scheme": first.scheme}
    for i, text in enumerate(texts):
        mh = MinHash(num_perm=num_perm, seed=seed, **same)
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
    bands, rows = lsh_bands(threshold, num_perm)
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


# An odd 64-bit constant (2**64 / golden ratio): multiplying by it mixes a key's words.
_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_keys(sigs: np.ndarray, band: int, rows: int) -> np.ndarray:
    """Each signature's key in `band`, the band number first: (n, rows + 1) uint32, so
    equal keys mean the same band and the same values, as `duplicate_clusters` compares."""
    values = sigs[:, band * rows : (band + 1) * rows].astype(np.uint32)
    return np.column_stack([np.full(len(sigs), band, np.uint32), values])


def key_buckets(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each band key (rows of `band_keys`): a hash of all its words mod `buckets`."""
    h = np.zeros(len(keys), np.uint64)
    for word in keys.T:
        h = (h ^ word.astype(np.uint64)) * _MIX  # wraps mod 2**64, as meant
    return ((h >> np.uint64(32)) % np.uint64(buckets)).astype(np.int64)


def pairs_with_first(keys: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, other) row indices: every row whose key (a row of `band_keys`) another row
    shares, paired with the row of lowest `rank` (source order) holding that key.

    These are exactly the pairs `duplicate_clusters` verifies: it keeps the first row seen
    per band key and checks each later row against that one only, never two later rows
    against each other, so union-find over these pairs, once verified, joins the same rows.
    """
    if not len(keys):
        empty = np.zeros(0, np.int64)
        return empty, empty
    # Keys sorted by their words (two uint32 to a uint64: any order that brings equal keys
    # together will do), then rank. A lexsort of columns, where np.unique of whole rows
    # took two more copies of the keys (peak 100 MiB, not 25, at 840k keys).
    k = keys.shape[1]
    words = [
        keys[:, c].astype(np.uint64) << np.uint64(32) | keys[:, c + 1] for c in range(0, k - 1, 2)
    ]
    words += [keys[:, k - 1]] if k % 2 else []
    order = np.lexsort([rank, *reversed(words)])
    starts = np.ones(len(order), bool)  # the first row of each key's group
    same = np.ones(len(order) - 1, bool)
    for word in words:
        sorted_word = word[order]
        same &= sorted_word[1:] == sorted_word[:-1]
    starts[1:] = ~same
    positions = np.arange(len(order))
    first = np.maximum.accumulate(np.where(starts, positions, 0))
    others = positions[~starts]
    return order[first[others]], order[others]


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal MinHash values: the value `duplicate_clusters` compares
    (np.mean of the equality, computed the same way: a count over num_perm)."""
    return np.count_nonzero(a == b, axis=1) / a.shape[1]


def connected_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over the pairs (a[i], b[i]) of row ids: (every id in a pair, sorted; the
    label of its connected component)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = np.unique(np.concatenate([a, b]))
    n = len(ids)
    if not n:
        return ids, np.zeros(0, np.int64)
    edges = coo_matrix(
        (np.ones(len(a), np.int8), (np.searchsorted(ids, a), np.searchsorted(ids, b))),
        shape=(n, n),
    )
    _, labels = connected_components(edges, directed=False)
    return ids, labels
