"""The on-policy RL stage's prompts: every single-turn prompt of the reward slices so far
(D3, D3+D6, ...), as trl's conversational `prompt` column. The policy answers them
itself during training and the reward model scores its answers, so no answer is kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import UserError
from core.parquet_io import write_json_atomic, write_parquet_atomic
from core.schemas import MESSAGE
from pipeline.flywheel.steps import StepResult

RL_PROMPTS = pa.schema([("prompt", pa.list_(MESSAGE)), ("prompt_id", pa.string())])


def write_rl_prompts(runs: list[Path], folder: Path) -> StepResult:
    """Prompts of the battle runs `runs` (their `_work/prompts.parquet`), single-turn
    only, once each, in prompt_id order, into folder/part-00000.parquet."""
    rows: dict[str, list] = {}
    multi_turn = 0
    for run in runs:
        path = Path(run) / "_work" / "prompts.parquet"
        if not path.exists():
            raise UserError(f"battle run {run} has no prompts ({path} is missing)")
        table = pq.read_table(path, columns=["prompt_id", "messages"]).to_pylist()
        for r in table:
            messages = [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
            if sum(m["role"] == "user" for m in messages) != 1 or messages[-1]["role"] != "user":
                multi_turn += 1
                continue
            rows[r["prompt_id"]] = messages
    order = sorted(rows)
    table = pa.Table.from_pydict(
        {"prompt": [rows[p] for p in order], "prompt_id": order}, RL_PROMPTS
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(table, folder / "part-00000.parquet")
    write_json_atomic(
        {"kind": "rl", "rows": table.num_rows, "runs": [str(r) for r in runs],
         "dropped": {"multi-turn": multi_turn}, "trained": None},
        folder / "_manifest.json",
    )  # fmt: skip
    return StepResult(
        f"{table.num_rows} single-turn prompts of {len(runs)} reward slices"
        f" ({multi_turn} multi-turn left out) -> {folder}",
        folder=str(folder),
        rows=table.num_rows,
    )
