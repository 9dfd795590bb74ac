"""The static embedder (model2vec distilled from MiniLM) against MiniLM, on real prompts.

    python -m bench.static_embedding [--rows N] [--clusters 50,500] [--static static:...]

Embeds the distinct real prompts of ../shared/data/prompts (as the embed stage sees them:
every user turn, deduplicated by prompt_id, in a seeded order) with MiniLM in float32 and
with the static model, one thread each (what one pipeline worker does), and prints:
- throughput of each (rows/s, after a warm-up) and the ratio;
- K-means agreement: the pipeline's train_kmeans and AssignClusters (same k and seed) on
  each embedding, compared by adjusted Rand index and NMI; beside it, MiniLM against
  MiniLM clustered with the next seed, the agreement a reseed alone gives;
- Diverse selection (the pipeline's draw_per_cluster, 2 a cluster): the share of prompt
  ids both sets chose, the share of MiniLM's clusters the static set covers (against a
  seeded random sample of the same size), and the overlap of each cluster's row nearest
  its centroid;
- semantic dedup (the pipeline's semantic_dedup) at its default threshold on each: rows
  dropped, agreement and Jaccard of the drop sets, how many of the static-only drops are
  mostly non-ASCII text (MiniLM's vocabulary spells such text in characters, whose mean
  says little), and the static threshold whose drops agree best with MiniLM's;
- recall of each row's MiniLM nearest neighbour among its static top 1 / top 10.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

PROMPTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"
PART_ROWS = 1_000
DEFAULT_STATIC = "static:builtin:all-minilm-l6-v2"


def real_prompts(rows: int | None, seed: int = 0) -> tuple[list[str], list[str]]:
    """(prompt ids, texts) of the distinct real prompts, in a seeded order, `rows` at most."""
    from core.defaults import MAX_CONVERSATION_CHARS
    from core.schemas import prompt_id, prompt_text
    from pipeline.ingest.shapes import to_conversation

    found: dict[str, str] = {}
    for path in sorted(PROMPTS.glob("*.jsonl")):
        for line in path.read_text().split("\n"):  # not splitlines: U+2028 sits in strings
            if line.strip():
                messages = to_conversation(json.loads(line), MAX_CONVERSATION_CHARS)[0]
                found.setdefault(prompt_id(messages), prompt_text(messages))
    ids = sorted(found)
    order = np.random.default_rng(seed).permutation(len(ids))[:rows]
    return [ids[i] for i in order], [found[ids[i]] for i in order]


def timed_embed(texts: list[str], config) -> tuple[np.ndarray, float]:
    from pipeline.evalset.embed import embed_texts

    embed_texts(texts[:32], config)  # loads the model (and warms it)
    start = time.perf_counter()
    vectors = embed_texts(texts, config)
    return vectors, time.perf_counter() - start


def write_embedded(folder: Path, ids: list[str], vectors: np.ndarray) -> Path:
    """Parts of (prompt_id, embedding) as the embed stage writes them."""
    from core.parquet_io import write_parquet_atomic
    from pipeline.evalset.embed import DTYPE_KEY

    for k, first in enumerate(range(0, len(ids), PART_ROWS)):
        chunk = np.ascontiguousarray(vectors[first : first + PART_ROWS], np.float32)
        table = pa.table(
            {
                "prompt_id": ids[first : first + PART_ROWS],
                "embedding": pa.FixedSizeListArray.from_arrays(
                    pa.array(chunk.ravel()), chunk.shape[1]
                ),
            }
        ).replace_schema_metadata({DTYPE_KEY: b"float32"})
        write_parquet_atomic(table, folder / f"part-{k:05d}.parquet")
    return folder


def clustered(embedded: Path, out: Path, k: int, seed: int) -> pd.DataFrame:
    """The pipeline's K-means on a folder: prompt_id, cluster, cluster_similarity."""
    from pipeline.evalset.kmeans import AssignClusters, KMeansConfig

    stage = AssignClusters(embedded, out, KMeansConfig(clusters=k, seed=seed))
    for step in [*stage.work_stages(), stage]:  # in this process: the code a worker runs
        for task in step.plan():
            step.process(task)
    return pd.read_parquet(out, columns=["prompt_id", "cluster", "cluster_similarity"])


def nearest_per_cluster(frame: pd.DataFrame) -> set[str]:
    return set(frame.loc[frame.groupby("cluster").cluster_similarity.idxmax(), "prompt_id"])


def compare_clusters(
    name: str, a: pd.DataFrame, b: pd.DataFrame, k: int, seed: int, per_cluster: int
) -> None:
    """Agreement of clustering b with clustering a (both indexed the same way)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from pipeline.evalset.select import draw_per_cluster

    b = b.set_index("prompt_id").loc[a.prompt_id].reset_index()
    ari = adjusted_rand_score(a.cluster, b.cluster)
    nmi = normalized_mutual_info_score(a.cluster, b.cluster)
    picked_a = draw_per_cluster(a[["prompt_id", "cluster"]], per_cluster, seed, "diverse")
    picked_b = draw_per_cluster(b[["prompt_id", "cluster"]], per_cluster, seed, "diverse")
    shared = len(set(picked_a.prompt_id) & set(picked_b.prompt_id)) / len(picked_a)
    labels = a.set_index("prompt_id").cluster
    covered = labels.loc[picked_b.prompt_id].nunique() / k
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(a), size=len(picked_b), replace=False)
    random_cover = a.cluster.iloc[sample].nunique() / k
    centre = len(nearest_per_cluster(a) & nearest_per_cluster(b)) / k
    print(
        f"  {name:<26} ARI {ari:.3f}  NMI {nmi:.3f}  | Diverse ids shared {shared:6.1%}  "
        f"covers {covered:6.1%} of MiniLM clusters (random {random_cover:.1%})  "
        f"| nearest-to-centre shared {centre:6.1%}"
    )


def dedup_drops(embedded: Path, threshold: float) -> set[str]:
    from pipeline.dedup.semantic import semantic_dedup

    return semantic_dedup(embedded, threshold=threshold, progress=False)


def mostly_non_ascii(text: str) -> bool:
    return sum(not c.isascii() for c in text) > len(text) / 2


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def neighbour_recall(base: np.ndarray, other: np.ndarray, top: tuple[int, ...]) -> dict:
    """Share of rows whose nearest neighbour under `base` is in their `other` top-k."""

    def ranked(vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, : max(top)]

    truth, found = ranked(base)[:, 0], ranked(other)
    return {k: float(np.mean([truth[i] in found[i, :k] for i in range(len(base))])) for k in top}


def main() -> None:
    import torch

    from pipeline.dedup.semantic import DEFAULT_THRESHOLD
    from pipeline.evalset import static_embedder
    from pipeline.evalset.embed import EmbedConfig
    from pipeline.evalset.kmeans import KMeansConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="prompts (default: all)")
    parser.add_argument("--clusters", default="50,500", help="K-means k, comma separated")
    parser.add_argument("--seed", type=int, default=KMeansConfig.seed)
    parser.add_argument("--static", default=DEFAULT_STATIC, help="the static embed_model")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one pipeline worker's share of the cores

    ids, texts = real_prompts(args.rows, args.seed)
    start = time.perf_counter()
    folder = static_embedder.model_dir(args.static)
    print(
        f"{len(texts)} distinct real prompts; static model {args.static} ready in "
        f"{time.perf_counter() - start:.1f} s ({folder})"
    )
    minilm, minilm_s = timed_embed(texts, EmbedConfig(dtype="float32"))
    static, static_s = timed_embed(texts, EmbedConfig(model=args.static))
    rate_m, rate_s = len(texts) / minilm_s, len(texts) / static_s
    print("throughput (1 thread)")
    print(f"  MiniLM float32      {rate_m:10.1f} rows/s ({minilm_s:.1f} s, {minilm.shape[1]} dims)")
    print(f"  static              {rate_s:10.1f} rows/s ({static_s:.2f} s, {static.shape[1]} dims)")
    print(
        f"  ratio               {rate_s / rate_m:10.1f}x; 1M rows on 2 workers: "
        f"{1e6 / (2 * rate_s) / 60:.1f} min static, {1e6 / (2 * rate_m) / 3600:.1f} h MiniLM"
    )

    root = Path(tempfile.mkdtemp(prefix="bench-static-"))
    folders = {
        "minilm": write_embedded(root / "minilm", ids, minilm),
        "static": write_embedded(root / "static", ids, static),
    }
    for k in (int(x) for x in args.clusters.split(",")):
        if k > len(ids):
            continue
        print(f"K-means k={k}, seed {args.seed}; Diverse 2 a cluster (vs MiniLM, seed {args.seed})")
        base = clustered(folders["minilm"], root / f"c-minilm-{k}", k, args.seed)
        reseeded = clustered(folders["minilm"], root / f"c-minilm-{k}-b", k, args.seed + 1)
        ours = clustered(folders["static"], root / f"c-static-{k}", k, args.seed)
        compare_clusters(f"MiniLM, seed {args.seed + 1}", base, reseeded, k, args.seed, 2)
        compare_clusters("static", base, ours, k, args.seed, 2)

    drops_m = dedup_drops(folders["minilm"], args.threshold)
    drops_s = dedup_drops(folders["static"], args.threshold)
    agree = 1 - len(drops_m ^ drops_s) / len(ids)
    print(f"semantic dedup at cosine >= {args.threshold}")
    print(
        f"  dropped: MiniLM {len(drops_m)}, static {len(drops_s)}, both {len(drops_m & drops_s)}; "
        f"decisions agree on {agree:.2%} of rows, Jaccard {jaccard(drops_m, drops_s):.3f}"
    )
    foreign = {i for i, t in zip(ids, texts, strict=True) if mostly_non_ascii(t)}
    print(
        f"  static-only drops of mostly non-ASCII text: {len((drops_s - drops_m) & foreign)} of "
        f"{len(drops_s - drops_m)} (such rows: {len(foreign) / len(ids):.1%} of the prompts)"
    )
    scan = {t: dedup_drops(folders["static"], t) for t in np.round(np.arange(0.80, 0.995, 0.01), 2)}
    best = max(scan, key=lambda t: (jaccard(drops_m, scan[t]), t))
    print(
        f"  best static threshold {best:.2f}: drops {len(scan[best])}, Jaccard "
        f"{jaccard(drops_m, scan[best]):.3f} with MiniLM's {len(drops_m)}"
    )
    recall = neighbour_recall(minilm, static, (1, 10))
    print(
        f"MiniLM nearest neighbour in the static top 1: {recall[1]:.1%}, top 10: {recall[10]:.1%}"
    )


if __name__ == "__main__":
    main()
