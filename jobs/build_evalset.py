"""`arena build-evalset --pool PATH... --out DIR`: WizardArena Diverse / Hard / Mix sets.

pool -> ingest -> exact dedup -> embed -> [semantic dedup] -> K-means -> Diverse + Hard
candidates -> difficulty by a judge LLM -> Hard -> Mix, each step a resumable folder of OUT.
With `semantic_threshold` set, rows whose embedding has cosine >= it to an earlier kept row
are dropped before K-means (OUT/semantic_dedup/, pairs in OUT/semantic_dedup/_pairs/).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from jobs.cluster import add_cluster_arguments


@dataclass(frozen=True)
class Recipe:
    clusters: int = 500
    diverse_per_cluster: int = 2
    hard_candidates_per_cluster: int = 20
    hard_top: int = 1000
    seed: int = 0
    embed_model: str = "builtin:all-minilm-l6-v2"
    embed_dtype: str = "auto"  # bfloat16 where the hardware has it natively, else float32
    judge_model: str = "builtin:smollm2-135m-instruct"
    difficulty_retries: int = 2
    difficulty_mode: str = "expected"  # or "generate"
    semantic_threshold: float | None = None  # cosine; None: no semantic dedup
    semantic_margin: float = 0.005  # pairs this close to the threshold are decided in float32
    semantic_search: str = "auto"  # kept-vector index: exact, ivf, auto (ivf from 100k rows)
    semantic_nprobe: int = 16  # ivf: cells searched per row

    def __post_init__(self):
        from pipeline.errors import UserError

        t = self.semantic_threshold
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 1
        ):
            raise UserError(f"semantic_threshold {t!r}: expected a cosine in (0, 1] or null (off)")

    @classmethod
    def load(cls, path: str | None, overrides: dict) -> Recipe:
        import yaml

        from pipeline.errors import UserError

        values = {}
        if path:
            recipe = Path(path)
            if not recipe.exists():
                recipe = (
                    Path(__file__).resolve().parents[1] / "eval_sets" / "recipes" / f"{path}.yaml"
                )
            if not recipe.exists():
                raise UserError(f"{path}: no such recipe file or packaged recipe")
            values = yaml.safe_load(recipe.read_text()) or {}
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise UserError(
                    f"{recipe}: unknown recipe key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def register(sub) -> None:
    p = sub.add_parser(
        "build-evalset", help="build WizardArena Diverse / Hard / Mix eval sets from a pool"
    )
    p.add_argument(
        "--pool", nargs="+", required=True, help="pool files or folders (any shape ingest reads)"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", help="YAML recipe file or a packaged one (wizardarena_mix, demo)")
    for f in fields(Recipe):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=float if f.default is None else type(f.default),
            default=None,
            help=f"(recipe default: {f.default})",
        )
    p.add_argument("--overwrite", action="store_true")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def _write_chunks(frame, folder: Path, rows_per_part: int) -> None:
    import pyarrow as pa

    from pipeline.hashing import combine_hashes, table_hash
    from pipeline.parquet_io import write_json_atomic, write_parquet_atomic

    hashes = {}
    for start in range(0, max(len(frame), 1), rows_per_part):
        table = pa.Table.from_pandas(
            frame.iloc[start : start + rows_per_part], preserve_index=False
        )
        name = f"part-{start // rows_per_part:05d}"
        write_parquet_atomic(table, folder / f"{name}.parquet")
        hashes[name] = table_hash(table)
    write_json_atomic(
        {"rows_out": len(frame), "content_hash": combine_hashes(hashes)}, folder / "_manifest.json"
    )


def build(client, pool_dir: Path, out: Path, recipe: Recipe, *, overwrite: bool = False) -> dict:
    """From a deduplicated conversation folder to OUT/{diverse,hard,mix}; returns counts."""
    import pandas as pd

    from pipeline.cluster import AssignClusters, KMeansConfig, train_kmeans
    from pipeline.embed import EmbedConfig, EmbedConversations
    from pipeline.evalset_report import write_report
    from pipeline.runner import run_stage
    from pipeline.score_difficulty import DifficultyConfig, ScoreDifficulty
    from pipeline.select import cluster_index, draw_per_cluster, fetch_rows, mix, top_by_difficulty

    out.mkdir(parents=True, exist_ok=True)
    embed = EmbedConfig(model=recipe.embed_model, dtype=recipe.embed_dtype)
    run_stage(EmbedConversations(pool_dir, out / "embedded", embed), client, overwrite=overwrite)
    embedded, semantic = out / "embedded", None
    if recipe.semantic_threshold is not None:
        semantic = semantic_dedup(
            client, embedded, out / "semantic_dedup", recipe, embed, overwrite
        )
        embedded = out / "semantic_dedup"
    centroids = train_kmeans(embedded, KMeansConfig(clusters=recipe.clusters, seed=recipe.seed))
    run_stage(AssignClusters(embedded, out / "clustered", centroids), client, overwrite=overwrite)

    index = cluster_index(out / "clustered")
    diverse_ids = draw_per_cluster(index, recipe.diverse_per_cluster, recipe.seed, "diverse")
    candidate_ids = draw_per_cluster(index, recipe.hard_candidates_per_cluster, recipe.seed, "hard")
    diverse = fetch_rows(out / "clustered", diverse_ids.prompt_id)
    candidates = fetch_rows(out / "clustered", candidate_ids.prompt_id).sort_values("prompt_id")
    _write_chunks(candidates, out / "candidates", rows_per_part=16)
    judge = DifficultyConfig(
        judge_model=recipe.judge_model,
        retries=recipe.difficulty_retries,
        seed=recipe.seed,
        mode=recipe.difficulty_mode,
    )
    run_stage(
        ScoreDifficulty(out / "candidates", out / "scored", judge), client, overwrite=overwrite
    )

    scored = pd.read_parquet(out / "scored")
    hard = top_by_difficulty(scored, recipe.hard_top, recipe.seed)
    mixed = mix(diverse, hard)
    for name, frame in (("diverse", diverse), ("hard", hard), ("mix", mixed)):
        _write_chunks(frame.sort_values("prompt_id"), out / name, rows_per_part=100_000)
    report = write_report(out, index, diverse, hard, mixed, scored, out / "clustered")
    if semantic is not None:
        add_semantic_line(report, semantic)
    return {
        "diverse": len(diverse),
        "diverse_clusters": int(diverse.cluster.nunique()),
        "candidates": len(scored),
        "judge_errors": int(scored.difficulty.isna().sum()),
        "hard": len(hard),
        "mix": len(mixed),
        "semantic_threshold": recipe.semantic_threshold,
        "semantic_dropped": semantic["summary"]["dropped"] if semantic else 0,
        "report": str(report),
    }


def semantic_dedup(
    client, embedded: Path, out: Path, recipe: Recipe, embed, overwrite: bool
) -> dict:
    """Drop rows too similar to an earlier kept row, on the embedded parts; returns the manifest."""
    from pipeline.dedup.semantic import SemanticDedup, SemanticDedupConfig
    from pipeline.runner import claim_output, is_complete, run_stage

    config = SemanticDedupConfig(
        threshold=recipe.semantic_threshold,
        embed=embed,
        margin=recipe.semantic_margin,
        search=recipe.semantic_search,
        nprobe=recipe.semantic_nprobe,
    )
    stage = SemanticDedup(embedded, out, config)
    claim_output(stage, overwrite)
    if not is_complete(stage) and not stage.pairs_file.exists():
        stage.find_pairs()
    return run_stage(stage, client, overwrite=overwrite)


def add_semantic_line(report: Path, manifest: dict) -> None:
    """The report's summary list gains a line on what semantic dedup dropped."""
    line = (
        f"- semantic dedup: {manifest['summary']['dropped']} of {manifest['rows_in']} rows dropped "
        f"at cosine >= {manifest['summary']['threshold']} before clustering "
        "(pairs: semantic_dedup/_pairs/pairs.parquet)"
    )
    lines = report.read_text().split("\n")
    at = next((i + 1 for i, x in enumerate(lines) if x.startswith("- mix:")), len(lines))
    report.write_text("\n".join([*lines[:at], line, *lines[at:]]))


def run(args: argparse.Namespace) -> int:
    from jobs import dedup, ingest
    from jobs.cluster import connect
    from pipeline.ingest.readers import expand_inputs

    overrides = {f.name: getattr(args, f.name) for f in fields(Recipe)}
    recipe = Recipe.load(args.recipe, overrides)
    out = Path(args.out)
    files = expand_inputs(args.pool)
    args.max_chars, args.chunk_mb = 200_000, 32
    with connect(args) as client:
        ingest.ingest(args, client, files, out / "pool")
        dedup.exact_dedup(client, out / "pool", out / "dedup", overwrite=args.overwrite)
        counts = build(client, out / "dedup", out, recipe, overwrite=args.overwrite)
    print(
        f"eval set: diverse {counts['diverse']} rows from {counts['diverse_clusters']} clusters, "
        f"hard {counts['hard']} of {counts['candidates']} candidates ({counts['judge_errors']} judge "
        f"errors), mix {counts['mix']} -> {out}/{{diverse,hard,mix}}; report {counts['report']}"
        + (
            f"; semantic dedup dropped {counts['semantic_dropped']} rows "
            f"(cosine >= {counts['semantic_threshold']})"
            if counts["semantic_threshold"] is not None
            else ""
        )
    )
    return 0
