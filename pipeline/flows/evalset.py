"""Flow: WizardArena Diverse / Hard / Mix eval sets, each step a resumable folder of OUT.

pool -> ingest -> exact dedup -> embed -> [semantic dedup] -> K-means -> Diverse + Hard
candidates (drawn per cluster on the workers: OUT/draws, their rows OUT/drawn) ->
difficulty by a judge LLM (a roster entry) -> Hard -> Mix. With
`semantic_threshold` set, rows whose embedding has cosine >= it to an earlier kept row
are dropped before K-means (OUT/semantic_dedup/, what went and why in its _dropped/).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.roster import pick_model
from core.config_files import check_mapping, field_types, read_yaml_mapping
from core.defaults import EMBED_MODEL, JUDGE_ROSTER
from core.errors import UserError
from core.parquet_io import write_frame_parts, write_text_atomic
from core.runner import run_stage
from core.worker_cache import VLLM_ENGINE, offload
from pipeline.dedup.float32_recheck import DEFAULT_MARGIN
from pipeline.dedup.kept_index import DEFAULT_NPROBE
from pipeline.dedup.semantic import SemanticDedup, SemanticDedupConfig
from pipeline.evalset.difficulty import DifficultyConfig, ScoreDifficulty
from pipeline.evalset.embed import EmbedConfig, EmbedConversations
from pipeline.evalset.kmeans import AssignClusters, KMeansConfig
from pipeline.flows.dedup import run_exact_dedup
from pipeline.flows.ingest import ingest
from pipeline.ingest.stage import IngestConfig

RECIPES = Path(__file__).resolve().parents[2] / "eval_sets" / "recipes"
DIFFICULTY_MODES = ("expected", "generate")
SEMANTIC_SEARCHES = ("auto", "clusters", "exact", "ivf")  # pipeline/dedup/semantic.py SEARCHES
# What a build writes in its folder (jobs/outputs.py: nothing else may be there).
OUTPUTS = (
    *("pool", "dedup", "embedded", "semantic_dedup", "clustered", "draws", "drawn"),
    *("candidates", "scored", "map_sample"),
    *("diverse", "hard", "mix", "report.md", "cluster_sizes.png", "embedding_map.png"),
)


@dataclass(frozen=True)
class Recipe:
    """An eval-set recipe (YAML keys; every key is also a build-evalset flag)."""

    clusters: int = field(default=500, metadata={"help": "K-means clusters"})
    diverse_per_cluster: int = field(default=2, metadata={"help": "Diverse rows per cluster"})
    hard_candidates_per_cluster: int = field(
        default=20, metadata={"help": "rows per cluster the difficulty judge scores"}
    )
    hard_top: int = field(default=1000, metadata={"help": "Hard rows: the most difficult"})
    seed: int = 0
    embed_model: str = field(
        default=EMBED_MODEL,
        metadata={
            "help": "sentence-transformers model, or static:MODEL for a model2vec static "
            "embedder (distilled once from MODEL, or MODEL a model2vec folder)"
        },
    )
    embed_dtype: str = field(
        default="auto",
        metadata={
            "help": "auto: bfloat16 where the hardware has it natively, else float32 "
            "(a static embedder is always float32)"
        },
    )
    difficulty_judge: str = field(
        default="smollm2-difficulty", metadata={"help": "entry of --judge-roster that scores"}
    )
    judge_roster: str = field(
        default=JUDGE_ROSTER, metadata={"help": "roster file (or packaged name) of the judge"}
    )
    difficulty_retries: int = 2
    difficulty_mode: str = field(
        default="expected",
        metadata={
            "help": "expected: probability-weighted score; generate: parse a written one",
            "choices": DIFFICULTY_MODES,
        },
    )
    semantic_threshold: float | None = field(
        default=None, metadata={"help": "cosine; unset: no semantic dedup"}
    )
    semantic_margin: float = field(
        default=DEFAULT_MARGIN,
        metadata={"help": "pairs this close to the threshold decided in float32"},
    )
    semantic_search: str = field(
        default="auto",
        metadata={
            "help": "clusters: within K-means clusters on the workers; exact: against every "
            "earlier kept row; ivf: exact's pass with an inverted-file index; auto: clusters "
            "from 100k rows"
        },
    )
    semantic_nprobe: int = field(
        default=DEFAULT_NPROBE, metadata={"help": "ivf: cells searched per row"}
    )

    def __post_init__(self):
        # A recipe file's values arrive untyped: a wrong type is a one-line error here,
        # not a TypeError inside K-means.
        for name, kind in field_types(type(self)).items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is None:
                continue  # an optional field left unset (semantic_threshold null: off)
            if kind is int and (not number or value != int(value)):
                raise UserError(f"{name} {value!r}: expected a whole number")
            if kind is str and not isinstance(value, str):
                raise UserError(f"{name} {value!r}: expected a string")
            if kind is float and not (number and math.isfinite(value)):
                raise UserError(f"{name} {value!r}: expected a finite number")
        at_least = {
            "clusters": 1,
            "diverse_per_cluster": 1,
            "hard_candidates_per_cluster": 0,
            "hard_top": 0,
            "difficulty_retries": 0,
            "semantic_nprobe": 1,
        }
        for name, least in at_least.items():
            if getattr(self, name) < least:
                raise UserError(f"{name} {getattr(self, name)}: expected at least {least}")
        if not 0 <= self.semantic_margin < 1:
            raise UserError(f"semantic_margin {self.semantic_margin}: expected a value in [0, 1)")
        if self.semantic_search not in SEMANTIC_SEARCHES:
            raise UserError(
                f"semantic_search {self.semantic_search!r}: expected one of "
                f"{', '.join(SEMANTIC_SEARCHES)}"
            )
        t = self.semantic_threshold
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 1
        ):
            raise UserError(f"semantic_threshold {t!r}: expected a cosine in (0, 1] or null (off)")
        self.embed_config()  # a bad embed_model or embed_dtype fails here, as a UserError
        if self.difficulty_mode not in DIFFICULTY_MODES:
            raise UserError(
                f"difficulty_mode {self.difficulty_mode!r}: expected one of "
                f"{', '.join(DIFFICULTY_MODES)}"
            )

    @classmethod
    def load(cls, path: str | None, overrides: dict | None = None) -> Recipe:
        """A recipe file (or packaged name), with `overrides` (None values ignored) on top."""
        values = {}
        if path:
            recipe = Path(path)
            if not recipe.exists():
                recipe = RECIPES / f"{path}.yaml"
            if not recipe.exists():
                raise UserError(f"{path}: no such recipe file or packaged recipe")
            values = read_yaml_mapping(recipe, "recipe keys")
            check_mapping(cls, values, f"{recipe}: recipe")
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(**values)

    def draw_config(self):
        from pipeline.evalset.draws import DrawConfig  # lazy: pandas (see build_from_deduped)

        return DrawConfig(
            seed=self.seed,
            diverse_per_cluster=self.diverse_per_cluster,
            candidates_per_cluster=self.hard_candidates_per_cluster,
        )

    def embed_config(self):
        return EmbedConfig(model=self.embed_model, dtype=self.embed_dtype)

    def difficulty_config(self):
        """The Hard-set scorer: the named roster entry, checked (a UserError otherwise)."""
        judge = pick_model(self.judge_roster, self.difficulty_judge, "--difficulty-judge")
        return DifficultyConfig(
            judge=judge, retries=self.difficulty_retries, seed=self.seed, mode=self.difficulty_mode
        )


def build_evalset(
    client,
    files: list[Path],
    out,
    recipe: Recipe,
    ingest_config: IngestConfig = IngestConfig(),
    *,
    overwrite: bool = False,
) -> dict:
    """Pool files -> OUT/pool, OUT/dedup, then the eval set in OUT; returns counts."""
    out = Path(out)
    ingest(client, files, out / "pool", ingest_config, overwrite=overwrite)
    run_exact_dedup(client, out / "pool", out / "dedup", overwrite=overwrite)
    return build_from_deduped(client, out / "dedup", out, recipe, overwrite=overwrite)


def build_from_deduped(
    client, pool_dir: Path, out: Path, recipe: Recipe, *, overwrite: bool = False
) -> dict:
    """From a deduplicated conversation folder to OUT/{diverse,hard,mix}; returns counts."""
    import pandas as pd

    # lazy: report, select and the draws import pandas, kept off `arena build-evalset --help`
    from pipeline.evalset.drawn_rows import DrawnRows, drawn_sets
    from pipeline.evalset.draws import DrawPerCluster, cluster_sizes
    from pipeline.evalset.map_sample import MapSample, map_vectors
    from pipeline.evalset.report import write_report
    from pipeline.evalset.select import mix, top_by_difficulty

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    difficulty = recipe.difficulty_config()  # a bad judge fails before the first stage
    embed = recipe.embed_config()
    embedded_manifest = run_stage(
        EmbedConversations(pool_dir, out / "embedded", embed), client, overwrite=overwrite
    )
    embedder = embedded_manifest["summary"]["embedder"]
    embedded, semantic = out / "embedded", None
    if recipe.semantic_threshold is not None:
        semantic = drop_semantic_duplicates(
            client, embedded, out / "semantic_dedup", recipe, overwrite
        )
        embedded = out / "semantic_dedup"
    kmeans = KMeansConfig(clusters=recipe.clusters, seed=recipe.seed)
    run_stage(AssignClusters(embedded, out / "clustered", kmeans), client, overwrite=overwrite)

    # Draws, their rows and the map's sample are read on the workers; the driver holds what
    # is bounded by clusters x draws a cluster (the drawn rows, each cluster's size) and
    # the map's sample.
    clustered = out / "clustered"
    run_stage(
        DrawPerCluster(clustered, out / "draws", recipe.draw_config()), client, overwrite=overwrite
    )
    run_stage(DrawnRows(clustered, out / "draws", out / "drawn"), client, overwrite=overwrite)
    diverse, candidates = drawn_sets(out / "drawn")
    write_frame_parts(candidates.sort_values("prompt_id"), out / "candidates", rows_per_part=16)
    run_stage(
        ScoreDifficulty(out / "candidates", out / "scored", difficulty),
        client,
        overwrite=overwrite,
    )

    # The build's models are done with: its encoders and a transformers difficulty judge
    # go. vLLM engines stay (a bounded number per worker): battles use the same settings.
    client.run(offload, keep=(VLLM_ENGINE,))

    scored = pd.read_parquet(out / "scored")
    hard = top_by_difficulty(scored, recipe.hard_top, recipe.seed)
    mixed = mix(diverse, hard)
    for name, frame in (("diverse", diverse), ("hard", hard), ("mix", mixed)):
        write_frame_parts(frame.sort_values("prompt_id"), out / name, rows_per_part=100_000)
    run_stage(MapSample(clustered, out / "map_sample"), client, overwrite=overwrite)
    sizes, pool_sample = cluster_sizes(out / "draws"), map_vectors(out / "map_sample")
    report = write_report(out, sizes, diverse, hard, mixed, scored, pool_sample, embedder=embedder)
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
        "embedder": embedder,
        "report": str(report),
        "out": str(out),
    }


def drop_semantic_duplicates(
    client, embedded: Path, out: Path, recipe: Recipe, overwrite: bool
) -> dict:
    """Drop rows too similar to an earlier kept row, on the embedded parts; returns the manifest."""
    config = SemanticDedupConfig(
        threshold=recipe.semantic_threshold,
        embed=recipe.embed_config(),
        margin=recipe.semantic_margin,
        search=recipe.semantic_search,
        nprobe=recipe.semantic_nprobe,
    )
    return run_stage(SemanticDedup(embedded, out, config), client, overwrite=overwrite)


def add_semantic_line(report: Path, manifest: dict) -> None:
    """The report's summary list gains a line on what semantic dedup dropped."""
    line = (
        f"- semantic dedup: {manifest['summary']['dropped']} of {manifest['rows_in']} rows dropped "
        f"at cosine >= {manifest['summary']['threshold']} before clustering "
        "(what went and why: semantic_dedup/_dropped/)"
    )
    lines = report.read_text().split("\n")
    at = next((i + 1 for i, x in enumerate(lines) if x.startswith("- mix:")), len(lines))
    write_text_atomic("\n".join([*lines[:at], line, *lines[at:]]), report)


def evalset_report(counts: dict, out) -> str:
    from pipeline.evalset.report import embedder_line  # lazy: pandas (see build_from_deduped)

    text = (
        f"eval set: diverse {counts['diverse']} rows from {counts['diverse_clusters']} clusters, "
        f"hard {counts['hard']} of {counts['candidates']} candidates ({counts['judge_errors']} judge "
        f"errors), mix {counts['mix']} -> {out}; report {counts['report']}"
    )
    if counts.get("embedder"):
        text += f"; embedded by {embedder_line(counts['embedder'])}"
    if counts["semantic_threshold"] is not None:
        text += (
            f"; semantic dedup dropped {counts['semantic_dropped']} rows "
            f"(cosine >= {counts['semantic_threshold']})"
        )
    return text
