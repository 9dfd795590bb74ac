"""A part that dedup emptied flows through embedding and cluster assignment like any other
(one schema, (0, dim) vectors), on a real LocalCluster with the real MiniLM."""

import pyarrow as pa
import pyarrow.parquet as pq

from core.runner import run_stage
from pipeline.evalset.embed import EmbedConversations, vectors_of
from pipeline.evalset.kmeans import AssignClusters, KMeansConfig


def test_empty_part_keeps_the_schema_through_embedding_and_clusters(client, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    texts = ["Explain photosynthesis.", "Write a haiku about rain.", "Sort a list in Python."]
    table = pa.table(
        {
            "prompt_id": [f"p{i}" for i in range(len(texts))],
            "messages": [[{"role": "user", "content": t}] for t in texts],
        }
    )
    pq.write_table(table, pool / "part-00000.parquet")
    pq.write_table(table.slice(0, 0), pool / "part-00001.parquet")

    run_stage(EmbedConversations(pool, tmp_path / "embedded"), client, progress=False)
    full = pq.read_table(tmp_path / "embedded" / "part-00000-0000.parquet")
    empty = pq.read_table(tmp_path / "embedded" / "part-00001-0000.parquet")
    assert full.schema.field("embedding").type == empty.schema.field("embedding").type
    assert vectors_of(full).shape == (3, 384) and vectors_of(empty).shape == (0, 384)

    config = KMeansConfig(clusters=2, points_per_centroid=1)
    run_stage(AssignClusters(tmp_path / "embedded", tmp_path / "clustered", config), client)
    clustered = pq.read_table(tmp_path / "clustered")
    assert clustered.num_rows == 3 and set(clustered.column("cluster").to_pylist()) == {0, 1}
    assert pq.read_table(tmp_path / "clustered" / "part-00001-0000.parquet").num_rows == 0
