"""The embedding map's sample, read on the workers (MapSample), holds the vectors of the
rows `kmeans.sample_vectors` chooses, in its order, and resumes from its markers."""

import numpy as np

from core.runner import run_stage
from pipeline.evalset.kmeans import sample_vectors
from pipeline.evalset.map_sample import MapSample, map_vectors
from tests.pipeline.evalset.conftest import clustered_pool

PART_ROWS = (120, 0, 7, 60, 200, 3, 90)


def test_map_sample_is_sample_vectors_read_on_the_workers(client, tmp_path):
    clustered = clustered_pool(tmp_path / "clustered", PART_ROWS, clusters=3)
    stage = MapSample(clustered, tmp_path / "map_sample", rows=12, seed=3)
    first = run_stage(stage, client, progress=False)
    vectors = map_vectors(tmp_path / "map_sample")
    assert vectors.dtype == np.float32 and vectors.shape == (12, 4)
    assert np.array_equal(vectors, sample_vectors(clustered, 12, 3))
    assert first["parts"] < sum(
        rows > 0 for rows in PART_ROWS
    )  # parts with no sampled row: no task

    again = run_stage(stage, client, progress=False)
    assert (
        again["resumed_parts"] == again["parts"] and again["content_hash"] == first["content_hash"]
    )
    # More rows than the pool: the whole pool, as sample_vectors gives.
    run_stage(MapSample(clustered, tmp_path / "all", rows=10_000), client, progress=False)
    assert np.array_equal(map_vectors(tmp_path / "all"), sample_vectors(clustered, 10_000, 0))
