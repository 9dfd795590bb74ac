"""MinHash near dedup on real prompts with near-copies added."""

import pandas as pd

from pipeline.dedup.minhash import near_dedup


def test_near_copies_clustered_and_dropped(tmp_path):
    base = [
        "Write a short poem about the sea at night and the light of the moon on the waves",
        "Explain how a hash table handles collisions using open addressing and chaining",
        "List three reasons why the Roman Empire fell, with one sentence for each reason",
    ]
    near = [base[0] + " please", base[1].replace("Explain", "Describe")]
    texts = base + near
    ids = [f"p{i}" for i in range(len(texts))]
    drop = near_dedup(ids, texts, out_dir=tmp_path, threshold=0.7)
    assert drop == {"p3", "p4"}
    clusters = pd.read_parquet(tmp_path / "clusters.parquet")
    assert sorted(clusters.groupby("cluster")["id"].apply(sorted).tolist()) == [
        ["p0", "p3"],
        ["p1", "p4"],
    ]
    assert clusters["kept"].sum() == 2
