"""ScoreDifficulty: candidate parts -> the same rows plus `difficulty` (0-10 or null),
`difficulty_error` and the judge's raw reply. The judge is a roster entry (default
`smollm2-difficulty` of the packaged `judges` roster); its model loads once per worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from arena_models.difficulty import DEFAULT_TEMPLATE, DifficultyScorer
from arena_models.roster import ModelSpec, load_roster, make_backend, pick_model
from core.config_files import read_text_file
from core.defaults import JUDGE_ROSTER
from core.errors import UserError
from core.hashing import table_hash
from core.parquet_io import write_parquet_atomic
from core.schemas import prompt_text
from core.stage import FolderStage, PartResult, Task
from core.worker_cache import ENCODER, offload

DEFAULT_JUDGE = "smollm2-difficulty"
# The backends with continuation_probabilities (mode "expected"); checked by a test.
PROBABILITY_BACKENDS = ("transformers", "vllm")
MODES = ("expected", "generate")


def default_judge() -> ModelSpec:
    return pick_model(load_roster(JUDGE_ROSTER), DEFAULT_JUDGE, "--difficulty-judge")


@dataclass(frozen=True)
class DifficultyConfig:
    """`judge`: the roster entry that scores. Its sampling is not used: "generate" is
    greedy first, then sampled retries (max_tokens, seed here)."""

    judge: ModelSpec = field(default_factory=default_judge)
    mode: str = "expected"  # "expected": probability-weighted score; "generate": parse a reply
    template: str = ""  # empty: the packaged template
    retries: int = 2
    max_tokens: int = 16
    seed: int = 0

    def __post_init__(self):
        # Checked here, when the job starts, not in a worker after submission.
        if self.mode not in MODES:
            raise UserError(f"difficulty mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == "expected" and self.judge.backend not in PROBABILITY_BACKENDS:
            raise UserError(
                f"difficulty judge {self.judge.name}: backend {self.judge.backend} gives no"
                " token probabilities; use difficulty mode generate or a transformers/vllm judge"
            )
        if self.template:
            path = Path(self.template)
            if not path.is_file() or "{instruction}" not in read_text_file(path):
                raise UserError(f"difficulty template {path}: needs a file with {{instruction}}")


class ScoreDifficulty(FolderStage):
    name = "score-difficulty"
    needs = ("prompt_id", "messages")
    makes = ("difficulty", "difficulty_error", "difficulty_reply")

    def __init__(self, candidates: Path, out: Path, config: DifficultyConfig | None = None):
        config = config or DifficultyConfig()
        super().__init__(candidates, out, config)
        self.resources = dict(config.judge.resources)  # e.g. GPU=1 for a vLLM judge

    def process(self, task: Task) -> PartResult:
        # The embed stage's encoders are done with by now: free them before the judge
        # loads, so a worker holds one model, not two (a later embed reloads its own).
        offload(ENCODER)
        cfg = self.config
        scorer = DifficultyScorer(
            make_backend(cfg.judge),
            Path(cfg.template) if cfg.template else DEFAULT_TEMPLATE,
            retries=cfg.retries,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            mode=cfg.mode,
            constraint=cfg.judge.constraint,
        )
        table = pq.read_table(task.params["path"])
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
