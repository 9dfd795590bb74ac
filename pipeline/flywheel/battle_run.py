"""BattleRun: a battle run folder (pipeline/battle/run.py) as the flywheel reads it.

In: RUN/combined/ (one row per prompt and pair: both games' scores summed, the winner by
the run's combine rule, the error), RUN/battles/_manifest.json (models, judge, config,
answer_keys: where each model's answers are in the cache, cache: its root) and
RUN/_work/prompts.parquet (the prompts the models answered). Out: those tables and the
answer texts behind a pair, looked up in the run's answer cache. Every mistake in the
input (no such run, a target that did not battle, a run written before its manifest
named its answers) is a one-line UserError before anything is selected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from arena_models.cache import AnswerCache
from core.errors import UserError
from core.parquet_io import read_folder
from pipeline.battle.prompts import read_prompts

PAIR_COLUMNS = ["prompt_id", "model_a", "model_b", "judge", "score_a", "score_b", "winner", "error"]


@dataclass(frozen=True)
class BattleRun:
    """`path`: the run folder as given (it is provenance); `combined`: the pair table."""

    path: str
    judge: str
    models: tuple[str, ...]
    combine: str
    answer_keys: dict[str, str]
    cache: Path
    combined: pa.Table
    prompts: dict[str, list[dict]]
    target: str  # the model whose pairs are read: the one given, else the run's --target

    def pairs_of(self, target: str) -> list[dict]:
        """The target's pairs (combined rows), in (prompt_id, model_a, model_b) order."""
        rows = [r for r in self.combined.to_pylist() if target in (r["model_a"], r["model_b"])]
        return sorted(rows, key=lambda r: (r["prompt_id"], r["model_a"], r["model_b"]))

    def answers(self, model: str, prompt_ids: list[str]) -> dict[str, dict]:
        """prompt_id -> the model's cached answer row (`answers`: one text per pending user
        turn, `finish_reasons`), for the ids the cache has."""
        if model not in self.answer_keys or not prompt_ids:
            return {}
        return AnswerCache(self.cache).lookup(model, self.answer_keys[model], prompt_ids)


def load_battle_run(path: str | Path, target: str | None = None) -> BattleRun:
    """Read a battle run folder and check that `target` (None: the run's own `--target`)
    battled in it."""
    run = Path(path)
    manifest_path = run / "battles" / "_manifest.json"
    if not (run / "battles").is_dir():
        raise UserError(f"battle run {path}: no battles/ folder (the --out of `arena battle`)")
    if not manifest_path.is_file():
        raise UserError(f"battle run {path}: no battles/_manifest.json (the run did not finish)")
    manifest = json.loads(manifest_path.read_text())
    models = tuple(manifest.get("models", ()))
    target = target or manifest.get("config", {}).get("target")
    if not target:
        raise UserError(f"battle run {path}: no target given, and the run's schedule has none")
    if target not in models:
        raise UserError(
            f"battle run {path} has no model {target} (models: {', '.join(models) or 'none'})"
        )
    if "answer_keys" not in manifest or "cache" not in manifest:
        raise UserError(
            f"battle run {path}: its manifest does not say where the answers are"
            " (written by an older `arena battle`; run it again, it reuses every cached"
            " answer and verdict)"
        )
    cache = Path(manifest["cache"])
    if not (cache / "answers").is_dir():
        raise UserError(f"battle run {path}: its answer cache {cache} does not exist")
    if not (run / "combined").is_dir():
        raise UserError(f"battle run {path}: no combined/ folder (the run did not finish)")
    prompts_path = run / "_work" / "prompts.parquet"
    if not prompts_path.is_file():
        raise UserError(f"battle run {path}: no _work/prompts.parquet (the run did not finish)")
    return BattleRun(
        path=str(path),
        judge=manifest["judge"],
        models=models,
        combine=manifest.get("config", {}).get("combine", "total"),
        answer_keys=dict(manifest["answer_keys"]),
        cache=cache,
        combined=read_folder(run / "combined", columns=PAIR_COLUMNS),
        prompts=read_prompts(prompts_path),
        target=target,
    )
