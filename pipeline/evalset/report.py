"""A short report of a built eval set: sizes, sources, lengths, the embedder, cluster histogram
and a 2-D map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.parquet_io import atomic_path, write_text_atomic
from core.schemas import prompt_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lengths(frame: pd.DataFrame) -> pd.Series:
    return frame.messages.map(lambda m: len(prompt_text(list(m))))


def plot_cluster_sizes(sizes: pd.Series, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(sizes, bins=min(40, max(5, len(sizes) // 2)), color="tab:blue")
    ax.set_xlabel("rows per cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"cluster sizes ({len(sizes)} clusters)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def plot_embedding_map(pool: np.ndarray, chosen: pd.DataFrame, path: Path) -> None:
    """PCA of a sample of the pool's vectors (grey, map_sample.py) with the chosen rows
    marked by subset."""
    plt = _pyplot()
    mean = pool.mean(axis=0)
    _, _, axes = np.linalg.svd(pool - mean, full_matrices=False)
    project = lambda v: (v - mean) @ axes[:2].T  # noqa: E731
    fig, ax = plt.subplots(figsize=(7, 6))
    xy = project(pool)
    ax.scatter(xy[:, 0], xy[:, 1], s=2, c="lightgrey", label="pool (sample)")
    colours = {"diverse": "tab:blue", "hard": "tab:red", "both": "tab:purple"}
    for subset, group in chosen.groupby("subset"):
        xy = project(np.stack(group.embedding.to_numpy()))
        ax.scatter(xy[:, 0], xy[:, 1], s=14, c=colours.get(subset, "black"), label=subset)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("embedding space (PCA) with the chosen rows")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def embedder_line(embedder: dict) -> str:
    """One line on what made the vectors (the embed stage's manifest summary `embedder`)."""
    dim, dtypes = embedder.get("dim"), ", ".join(embedder.get("dtypes", []))
    if embedder.get("kind") == "static":
        made = (
            f"distilled from {embedder['distilled_from']} (PCA {embedder['pca_dims']} dims, "
            f"SIF {embedder['sif_coefficient']:g})"
            if "distilled_from" in embedder
            else f"folder {embedder.get('folder')}"
        )
        return f"{embedder['model']}: static model2vec, {made}; {dim} dims, {dtypes}"
    return f"{embedder['model']}: transformer (sentence-transformers); {dim} dims, {dtypes}"


def write_report(
    out: Path,
    sizes: pd.Series,
    diverse: pd.DataFrame,
    hard: pd.DataFrame,
    mixed: pd.DataFrame,
    scored: pd.DataFrame,
    pool_sample: np.ndarray,
    embedder: dict | None = None,
) -> Path:
    """`sizes`: rows per cluster of the clustered pool (draws.cluster_sizes); `pool_sample`:
    vectors of a sample of it (map_sample.map_vectors). Nothing here reads the pool."""
    plot_cluster_sizes(sizes, out / "cluster_sizes.png")
    plot_embedding_map(pool_sample, mixed, out / "embedding_map.png")
    lines = [
        "# Eval set report",
        "",
        f"- pool rows clustered: {int(sizes.sum())} in {len(sizes)} clusters "
        f"(sizes min {sizes.min()}, median {int(sizes.median())}, max {sizes.max()})",
        f"- diverse: {len(diverse)} rows from {diverse.cluster.nunique()} clusters",
        f"- hard candidates: {len(scored)} scored, {int(scored.difficulty.isna().sum())} judge errors; "
        f"hard: {len(hard)} rows (difficulty "
        + (f"{hard.difficulty.min():.2f}-{hard.difficulty.max():.2f})" if len(hard) else "n/a)"),
        f"- mix: {len(mixed)} rows, {int((mixed.messages.map(len) > 1).sum())} multi-turn",
        *([f"- embedder: {embedder_line(embedder)}"] if embedder else []),
        "",
        "| subset | rows | median prompt chars | sources |",
        "|---|---:|---:|---|",
    ]
    for name, frame in (("diverse", diverse), ("hard", hard), ("mix", mixed)):
        sources = ", ".join(f"{s} {n}" for s, n in frame.source.value_counts().items())
        median = int(_lengths(frame).median()) if len(frame) else 0
        lines.append(f"| {name} | {len(frame)} | {median} | {sources} |")
    lines += [
        "",
        "![cluster sizes](cluster_sizes.png)",
        "",
        "![embedding map](embedding_map.png)",
        "",
    ]
    path = out / "report.md"
    write_text_atomic("\n".join(lines), path)
    return path
