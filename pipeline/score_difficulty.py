"""ScoreDifficulty: candidate parts -> the same rows plus `difficulty` (0-10 or null),
`difficulty_error` and the judge's raw reply, one judge model loaded per worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.hashing import folder_fingerprint, table_hash
from pipeline.parquet_io import part_files, write_parquet_atomic
from pipeline.schemas import prompt_text
from pipeline.stage import PartResult, Stage, Task


@dataclass(frozen=True)
class DifficultyConfig:
    judge_model: str = "builtin:smollm2-135m-instruct"
    judge_dtype: str = "float32"
    mode: str = (
        "expected"  # "expected": probability-weighted score; "generate": parse a written score
    )
    template: str = ""  # empty: the packaged template
    retries: int = 2
    max_tokens: int = 16
    batch_size: int = 8
    seed: int = 0


class ScoreDifficulty(Stage):
    name = "score-difficulty"
    needs = ("prompt_id", "messages")
    makes = ("difficulty", "difficulty_error", "difficulty_reply")

    def __init__(self, candidates: Path, out: Path, config: DifficultyConfig = DifficultyConfig()):
        super().__init__(out, config)
        self.candidates = Path(candidates)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "input": folder_fingerprint(self.candidates)}

    def plan(self) -> list[Task]:
        return [Task(p.stem, {"path": str(p)}) for p in part_files(self.candidates)]

    def process(self, task: Task) -> PartResult:
        from arena_models.backends.transformers_backend import TransformersBackend
        from arena_models.difficulty import DEFAULT_TEMPLATE, DifficultyScorer

        cfg = self.config
        backend = TransformersBackend(
            cfg.judge_model, dtype=cfg.judge_dtype, batch_size=cfg.batch_size
        )
        scorer = DifficultyScorer(
            backend,
            Path(cfg.template) if cfg.template else DEFAULT_TEMPLATE,
            retries=cfg.retries,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            mode=cfg.mode,
        )
        table = pq.read_table(task.spec["path"])
        results = scorer.score([prompt_text(m) for m in table.column("messages").to_pylist()])
        for column, values, kind in (
            ("difficulty", [r.score for r in results], pa.float32()),
            ("difficulty_error", [r.error for r in results], pa.string()),
            ("difficulty_reply", [r.raw for r in results], pa.string()),
        ):
            table = table.append_column(column, pa.array(values, kind))
        write_parquet_atomic(table, self.out / f"{task.name}.parquet")
        errors = sum(r.score is None for r in results)
        return PartResult(
            task.name,
            table.num_rows,
            table.num_rows - errors,
            rows_rejected=errors,
            content_hash=table_hash(table),
            stats={"judge_errors": errors},
        )
