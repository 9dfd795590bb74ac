"""The draws on the workers (DrawPerCluster, DrawnRows) pick exactly the rows the former
in-driver functions picked from the whole pool, and resume from their markers.

The clustered folder is synthetic (no model): parts of unequal sizes, one empty, with
clusters of unequal sizes, and a small bucket size so that several buckets each merge
several parts."""

import json

import pandas as pd
import pyarrow.dataset as ds
import pytest

from core.runner import run_stage
from pipeline.evalset.drawn_rows import DrawnRows, drawn_sets
from pipeline.evalset.draws import DrawConfig, DrawPerCluster, cluster_sizes
from pipeline.evalset.select import draw_per_cluster
from tests.pipeline.evalset.conftest import clustered_pool

PART_ROWS = (300, 0, 41, 170, 89)
CLUSTERS = 9
CONFIG = DrawConfig(seed=5, diverse_per_cluster=2, candidates_per_cluster=7, rows_per_bucket=150)


# The former in-driver steps, kept as the reference: the whole index, then the full rows.
def cluster_index(clustered):
    frame = ds.dataset(str(clustered)).to_table(columns=["prompt_id", "cluster"]).to_pandas()
    return frame.drop_duplicates("prompt_id")


def fetch_rows(clustered, prompt_ids):
    table = ds.dataset(str(clustered)).to_table(filter=ds.field("prompt_id").isin(list(prompt_ids)))
    return table.to_pandas().drop_duplicates("prompt_id")


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    return clustered_pool(tmp_path_factory.mktemp("draws") / "clustered", PART_ROWS, CLUSTERS)


def draw(client, clustered, out):
    manifest = run_stage(DrawPerCluster(clustered, out / "draws", CONFIG), client, progress=False)
    run_stage(DrawnRows(clustered, out / "draws", out / "drawn"), client, progress=False)
    return manifest


def test_draws_on_the_workers_equal_the_in_driver_draws(client, clustered, tmp_path):
    manifest = draw(client, clustered, tmp_path)
    assert manifest["summary"]["buckets"] == 4 and manifest["summary"]["clusters"] == CLUSTERS
    assert not (tmp_path / "draws" / "_keyed").exists()  # the shuffle goes once drawn

    index = cluster_index(clustered)
    diverse_ids = draw_per_cluster(index, CONFIG.diverse_per_cluster, CONFIG.seed, "diverse")
    hard_ids = draw_per_cluster(index, CONFIG.candidates_per_cluster, CONFIG.seed, "hard")
    expected_diverse = fetch_rows(clustered, diverse_ids.prompt_id).reset_index(drop=True)
    expected_candidates = fetch_rows(clustered, hard_ids.prompt_id).reset_index(drop=True)
    # Small clusters give all their rows, large ones only their draws.
    assert len(expected_candidates) < len(index) and len(hard_ids) > CLUSTERS * 2

    diverse, candidates = drawn_sets(tmp_path / "drawn")
    pd.testing.assert_frame_equal(diverse, expected_diverse)  # rows, columns, pool order
    pd.testing.assert_frame_equal(candidates, expected_candidates)
    sizes = cluster_sizes(tmp_path / "draws")
    pd.testing.assert_series_equal(
        sizes, index.groupby("cluster").size(), check_index_type=False, check_names=False
    )
    # Only parts holding a drawn row are read by a task.
    drawn = json.loads((tmp_path / "drawn" / "_manifest.json").read_text())
    assert drawn["parts"] == sum(rows > 0 for rows in PART_ROWS)


def test_draws_resume_and_redo_a_damaged_bucket(client, clustered, tmp_path):
    first = draw(client, clustered, tmp_path)
    again = draw(client, clustered, tmp_path)
    assert again["resumed_parts"] == again["parts"] == first["parts"]

    # A damaged bucket is redone, its shuffle first (removed once the draws were done).
    damaged = tmp_path / "draws" / "part-00001.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-20])
    redone = draw(client, clustered, tmp_path)
    assert redone["resumed_parts"] == redone["parts"] - 1
    assert redone["content_hash"] == first["content_hash"]
    assert not (tmp_path / "draws" / "_keyed").exists()
