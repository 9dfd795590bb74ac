"""The rule semantic dedup decides by, whichever pass finds the candidates.

Rows are taken in pool order (part, then row). A row is dropped when an earlier kept row
is at least `threshold` similar (cosine of unit vectors), so the first occurrence wins.
Where vectors were made in reduced precision, a candidate within `band` of the threshold
is decided on float32 vectors of both rows (pipeline.dedup.float32_recheck). Every pass
writes the drops it decided as PAIRS rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

DEFAULT_THRESHOLD = 0.95

PAIRS = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("part", pa.int32()),  # the dropped row: part number in the folder, row in the part
        ("row", pa.int32()),
        ("duplicate_of", pa.string()),  # prompt_id of the kept row that matched
        ("duplicate_of_part", pa.int32()),
        ("duplicate_of_row", pa.int32()),
        ("similarity", pa.float32()),
        ("float32", pa.bool_()),  # decided on float32 vectors
        ("cluster", pa.int32()),  # the centroid whose rows were compared; -1: a global pass
    ]
)


def best_match(
    near: np.ndarray,
    candidates: list,
    row,
    threshold: float,
    band: float,
    exact_cosine: Callable | None,
) -> tuple[int, float, bool] | None:
    """The best of a row's candidate matches (cosines `near`, from threshold - band up) if it
    reaches the threshold: (candidate index, cosine, decided in float32), else None. When no
    candidate is clearly above (threshold + band), their float32 cosines decide."""
    in_float32 = band > 0 and near.max() < threshold + band
    if in_float32:
        near = np.array([exact_cosine(c, row) for c in candidates], np.float32)
    best = int(near.argmax())
    return (best, float(near[best]), in_float32) if near[best] >= threshold else None


def kept_in_block(
    sims: np.ndarray,
    threshold: float,
    band: float = 0.0,
    exact_cosine: Callable[[int, int], float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within one block of rows in pool order, from their cosine matrix: mask of kept rows, and
    for dropped rows their kept match and cosine. A row goes when an earlier kept row of the
    block matches (`best_match`)."""
    n = len(sims)
    keep = np.ones(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    sim = np.zeros(n, dtype=np.float32)
    close = sims >= threshold - band  # close[j, i] for i < j: an earlier row i near j
    rows, cols = np.nonzero(close)
    for j in np.unique(rows[cols < rows]):  # most rows have none: no Python step
        earlier = np.nonzero(keep[:j] & close[j, :j])[0]
        if not len(earlier):
            continue
        found = best_match(sims[j, earlier], earlier.tolist(), j, threshold, band, exact_cosine)
        if found:
            best, sim[j], _ = found
            keep[j], match[j] = False, earlier[best]
    return keep, match, sim
