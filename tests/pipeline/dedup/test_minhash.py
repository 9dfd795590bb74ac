"""MinHash near dedup on real prompts with near-copies added: the in-memory rule
(`duplicate_clusters`) the distributed stages are checked against."""

from pipeline.dedup.minhash import duplicate_clusters, signatures


def test_near_copies_clustered_and_dropped():
    base = [
        "Write a short poem about the sea at night and the light of the moon on the waves",
        "Explain how a hash table handles collisions using open addressing and chaining",
        "List three reasons why the Roman Empire fell, with one sentence for each reason",
    ]
    near = [base[0] + " please", base[1].replace("Explain", "Describe")]
    texts = base + near
    ids = [f"p{i}" for i in range(len(texts))]
    sigs = signatures(texts, num_perm=128, seed=1, k=3)
    clusters = duplicate_clusters(ids, sigs, threshold=0.7, num_perm=128)
    # Each near copy joins its original, which comes first and is the one kept.
    assert sorted(sorted(ids[i] for i in c) for c in clusters) == [["p0", "p3"], ["p1", "p4"]]
    assert {ids[c[0]] for c in clusters} == {"p0", "p1"}
