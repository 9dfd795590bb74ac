"""Near dedup's stages against the one-process banding they replaced
(`minhash.duplicate_clusters`, which kept the first row seen per band key and verified
each later row against it), on a pool with planted near-duplicate families: the same
clusters, kept rows, similarities and dropped rows; band files without signatures, and the
verified pairs those of banding every row at once; and resume after the work stages."""

import random
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import get_task_stream

from core.parquet_io import write_parquet_atomic
from core.runner import run_stage
from core.schemas import prompt_text
from pipeline.dedup.minhash import (
    band_keys,
    duplicate_clusters,
    estimated_jaccard,
    lsh_bands,
    pairs_with_first,
    signatures,
)
from pipeline.dedup.near import NearDedup, NearDedupConfig

WORDS = [f"w{i}" for i in range(3000)]


def _family(rng: random.Random, size: int) -> list[str]:
    """A base text and `size - 1` edits, each of an earlier member (chains as well as
    stars), with 0 to 3 words replaced: similarities straddle the thresholds."""
    members = [rng.choices(WORDS, k=rng.randint(25, 45))]
    while len(members) < size:
        words = list(rng.choice(members))
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            words[rng.randrange(len(words))] = rng.choice(WORDS)
        members.append(words)
    return [" ".join(w) for w in members]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Three parts of 60 families and 120 unrelated rows, shuffled, so source order
    (source_file, source_line) is not part order, and two rows share a source position
    (the tie goes to the part, then the row)."""
    rng = random.Random(7)
    texts = [t for _ in range(60) for t in _family(rng, rng.randint(2, 7))]
    texts += [" ".join(rng.choices(WORDS, k=30)) for _ in range(120)]
    rng.shuffle(texts)
    positions = [(rng.choice(["b.jsonl", "a.jsonl"]), line) for line in range(len(texts))]
    positions[5] = positions[len(texts) - 5]
    pool = tmp_path_factory.mktemp("planted") / "pool"
    per = -(-len(texts) // 3)
    for k, start in enumerate(range(0, len(texts), per)):
        rows = range(start, min(len(texts), start + per))
        table = pa.table(
            {
                "prompt_id": [f"p{i:05d}" for i in rows],
                "messages": [[{"role": "user", "content": texts[i]}] for i in rows],
                "source_file": [positions[i][0] for i in rows],
                "source_line": pa.array([positions[i][1] for i in rows], pa.int64()),
            }
        )
        write_parquet_atomic(table, pool / f"part-{k:05d}.parquet")
    return pool


def _source_ordered(pool, config: NearDedupConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The pool's rows in source order, with part, row and row id (part number in the
    high 32 bits), and their signatures."""
    frames = []
    for number, path in enumerate(sorted(pool.glob("part-*.parquet"))):
        frame = pd.read_parquet(path)
        frame["part"], frame["row"] = path.stem, range(len(frame))
        frame["id"] = (number << 32) + np.arange(len(frame))
        frames.append(frame)
    rows = pd.concat(frames).sort_values(["source_file", "source_line", "part", "row"])
    texts = [prompt_text(m) for m in rows.messages]
    return rows, signatures(texts, config.num_perm, config.seed, config.ngram).astype(np.uint32)


def _before(pool, config: NearDedupConfig, every_pair: bool = False) -> pd.DataFrame:
    """The clusters the driver-side version wrote: rows in source order, banded and
    joined by `duplicate_clusters`. `every_pair`: verify every pair sharing a band key
    instead (what a plain union-find over all candidate pairs would do)."""
    rows, sigs = _source_ordered(pool, config)
    args = (list(rows.prompt_id), sigs, config.threshold, config.num_perm)
    clusters = _every_pair_clusters(*args) if every_pair else duplicate_clusters(*args)
    clusters.sort(key=lambda members: members[0])
    out = []
    for c, members in enumerate(clusters):
        head = members[0]
        for i in members:
            out.append(
                {
                    "cluster": c,
                    "part": rows.part.iloc[i],
                    "row": rows.row.iloc[i],
                    "kept": i == head,
                    "kept_id": rows.prompt_id.iloc[head],
                    "similarity": np.float32(np.mean(sigs[i] == sigs[head])),
                }
            )
    return pd.DataFrame(out)


def _every_pair_clusters(ids, sigs, threshold, num_perm) -> list[list[int]]:
    bands, rows = lsh_bands(threshold, num_perm)
    parent = list(range(len(ids)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    groups: dict = {}
    for i in range(len(ids)):
        for b in range(bands):
            groups.setdefault((b, sigs[i, b * rows : (b + 1) * rows].tobytes()), []).append(i)
    for members in groups.values():
        for n, i in enumerate(members):
            for j in members[:n]:
                if np.mean(sigs[i] == sigs[j]) >= threshold:
                    parent[find(i)] = find(j)
    found: dict = {}
    for i in range(len(ids)):
        found.setdefault(find(i), []).append(i)
    return [sorted(g) for g in found.values() if len(g) > 1]


def _dropped(clusters: pd.DataFrame) -> set:
    return set(clusters.loc[~clusters.kept, ["part", "row"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    ("config", "buckets"),
    [
        (NearDedupConfig(rows_per_bucket=400), 9),
        (NearDedupConfig(threshold=0.7, num_perm=64, ngram=5), 1),  # datatrove's 5-grams
    ],
    ids=["default-9-buckets", "5-grams"],
)
def test_same_clusters_and_dropped_rows_as_the_driver_version(
    client, planted, tmp_path, config, buckets
):
    stage = NearDedup(planted, tmp_path / "near", config)
    manifest = run_stage(stage, client, progress=False)
    after = pd.read_parquet(stage.clusters_file)
    before = _before(planted, config)
    columns = ["cluster", "part", "row", "kept", "kept_id", "similarity"]
    pd.testing.assert_frame_equal(after[columns], before[columns], check_dtype=False)
    assert _dropped(after) == _dropped(before) and len(_dropped(after)) > 50
    assert manifest["summary"]["dropped"] == len(_dropped(before))
    kept = pd.read_parquet(tmp_path / "near")
    assert len(kept) + len(_dropped(before)) == len(pd.read_parquet(planted))
    assert manifest["summary"]["buckets"] == buckets
    if buckets > 1:
        # Verifying every pair sharing a band key would drop a row the old version kept
        # (one here): the pool exercises the difference the stages must reproduce.
        assert _dropped(_before(planted, config, every_pair=True)) != _dropped(before)


def _banded_pairs(pool, config: NearDedupConfig) -> set:
    """(first id, other id, similarity) of the verified pairs the stages wrote before band
    files lost their signatures (one pair task a bucket verifying on them): every band key
    of every row in one go (a key's bucket depends on the key alone), each row paired with
    its key group's first row in source order, kept from the threshold on."""
    rows, sigs = _source_ordered(pool, config)
    bands, per_band = config.bands()
    keys = np.concatenate([band_keys(sigs, b, per_band) for b in range(bands)])
    first, other = pairs_with_first(keys, np.tile(np.arange(len(rows)), bands))
    first, other = first % len(rows), other % len(rows)
    similarity = estimated_jaccard(sigs[first], sigs[other]).astype(np.float32)
    ids = rows.id.to_numpy()
    ok = similarity >= config.threshold
    return set(zip(ids[first[ok]], ids[other[ok]], similarity[ok], strict=True))


def test_band_files_hold_no_signature_and_the_verified_pairs_are_unchanged(
    client, planted, tmp_path
):
    config = NearDedupConfig(rows_per_bucket=400)
    stage = NearDedup(planted, tmp_path / "near", config)
    stage.out.mkdir()
    for work in stage.work_stages():
        run_stage(work, client, progress=False)
    band_files = sorted((stage.signed / "_bands").glob("b-*/*.parquet"))
    assert len(band_files) > 9
    for path in band_files:
        assert pq.read_schema(path).names == ["key", "source_file", "source_line", "id"]
    pairs = pd.read_parquet(stage.pairs)
    found = set(zip(pairs["first"], pairs["other"], pairs["similarity"], strict=True))
    assert len(found) == len(pairs)  # each pair once
    expected = _banded_pairs(planted, config)
    assert found == expected and len(expected) > 50


def _ran(stream) -> set[str]:
    """Stage names of the tasks in a task stream (keys: name-confighash-task)."""
    return {re.match(r"(.+?)-[0-9a-f]{16}-", entry["key"]).group(1) for entry in stream.data}


def test_resume_after_work_stages_and_after_a_lost_part(client, planted, tmp_path):
    config = NearDedupConfig(rows_per_bucket=400)
    fresh = run_stage(NearDedup(planted, tmp_path / "fresh", config), client, progress=False)

    # Killed once the work stages were done: the rerun only filters.
    stage = NearDedup(planted, tmp_path / "near", config)
    stage.out.mkdir()
    for work in stage.work_stages():
        run_stage(work, client, progress=False)
    with get_task_stream(client) as stream:
        manifest = run_stage(NearDedup(planted, tmp_path / "near", config), client, progress=False)
    assert _ran(stream) == {"near-dedup"}
    assert manifest["content_hash"] == fresh["content_hash"]
    assert not (stage.signed.exists() or stage.pairs.exists()) and stage.clusters_file.exists()

    # A finished run that lost an output part redoes that part from the clusters it kept.
    (stage.out / "part-00001.parquet").unlink()
    clusters_written = stage.clusters_file.stat().st_mtime_ns
    with get_task_stream(client) as stream:
        again = run_stage(NearDedup(planted, tmp_path / "near", config), client, progress=False)
    assert _ran(stream) == {"near-dedup"} and len(stream.data) == 1
    assert again["content_hash"] == fresh["content_hash"]
    assert stage.clusters_file.stat().st_mtime_ns == clusters_written
    assert pq.read_table(stage.out / "part-00001.parquet").num_rows > 0
