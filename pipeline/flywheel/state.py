"""The flywheel's state file, OUT/flywheel.json: what each iteration is made of (slices,
thresholds, the model it started from) and what each step produced (its StepResult:
battle runs, shards, checkpoints, ratings), written after every step. A rerun skips the
steps it records as done, so a killed iteration resumes where it stopped, unless an output it
recorded is gone or (a stage folder) fails its markers' checks: then the step runs again,
and its own resume redoes only what is missing. `arena flywheel status` prints it."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from core.errors import UserError
from core.hashing import config_hash
from core.parquet_io import write_json_atomic
from core.runner import folder_problem
from core.stage import DONE_DIR
from pipeline.flywheel.steps import StepResult

log = logging.getLogger(__name__)

FILE = "flywheel.json"
# What the state adds to a step's result in its entry.
BOOKKEEPING = ("status", "finished", "order")


class FlywheelState:
    def __init__(self, out: str | Path, data: dict):
        self.path = Path(out) / FILE
        self.data = data

    @classmethod
    def load(cls, out: str | Path) -> FlywheelState | None:
        path = Path(out) / FILE
        if not path.exists():
            return None
        try:
            return cls(out, json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not a flywheel state file ({exc})") from None

    @classmethod
    def open(cls, out: str | Path, config: dict, *, overwrite: bool = False) -> FlywheelState:
        """The state of OUT, bound to `config`: a different config is refused, because
        the shards and checkpoints there were made by the recorded one."""
        digest = config_hash(config)
        state = cls.load(out)
        if state and state.data["config_hash"] != digest and not overwrite:
            raise UserError(
                f"{state.path} was made with another flywheel config"
                f" ({state.data['config_hash']}, now {digest}): use a new --out, or --overwrite"
            )
        if state is None or state.data["config_hash"] != digest:
            state = cls(out, {"config": config, "config_hash": digest, "iterations": {}})
            state.save()
        return state

    def iteration(self, number: int) -> dict:
        return self.data["iterations"].setdefault(str(number), {"status": "running", "steps": {}})

    def done(self, number: int, step: str) -> StepResult | None:
        """The recorded result of a finished step whose outputs are still there, or None."""
        found = self.data["iterations"].get(str(number), {}).get("steps", {}).get(step)
        if not found or found.get("status") != "done":
            return None
        result = StepResult.from_record({k: v for k, v in found.items() if k not in BOOKKEEPING})
        problem = _outputs_problem(result)
        if problem:
            log.warning("flywheel iteration %d: redoing %s: %s", number, step, problem)
            return None
        return result

    def record(self, number: int, step: str, result: StepResult) -> StepResult:
        steps = self.iteration(number)["steps"]
        steps[step] = {
            **result.as_record(),
            "status": "done",
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "order": steps.get(step, {}).get("order", len(steps) + 1),  # the file sorts keys
        }
        self.save()
        return result

    def update(self, number: int, **values) -> None:
        self.iteration(number).update(values)
        self.save()

    def require_finished(self, number: int) -> dict:
        found = self.data["iterations"].get(str(number))
        if not found or found.get("status") != "done":
            raise UserError(
                f"iteration {number} has not finished in {self.path.parent}:"
                f" run --iteration {number} first"
            )
        return found

    def save(self) -> None:
        write_json_atomic(self.data, self.path)


def _outputs_problem(result: StepResult) -> str | None:
    """Why a step's recorded outputs cannot be trusted: one is missing, or a stage folder
    (one with completion markers) has a part that is missing or changed."""
    for path in result.outputs:
        if not path.exists():
            return f"{path} is missing"
        if (path / DONE_DIR).is_dir():
            problem = folder_problem(path)
            if problem:
                return problem
    return None


def render_status(state: FlywheelState | None, out) -> str:
    """What `arena flywheel status` prints: one block per iteration, one line per step."""
    if state is None:
        return f"{out}: no flywheel run here yet ({FILE} is missing)"
    lines = [f"flywheel {out} (config {state.data['config_hash']})"]
    for number, it in sorted(state.data["iterations"].items(), key=lambda kv: int(kv[0])):
        start = it.get("start_model", {})
        lines.append(
            f"iteration {number}: {it.get('status')}; from {start.get('name')}"
            f" ({start.get('path')}); slices {it.get('slices', {})};"
            f" thresholds {it.get('thresholds', {})}"
        )
        for step, result in ordered_steps(it):
            lines.append(f"  {step:<14} {result.get('status')}  {result.get('line', '')}")
        if it.get("final_model"):
            final = it["final_model"]
            lines.append(f"  -> {final['name']} ({final['path']})")
    return "\n".join(lines)


def ordered_steps(it: dict) -> list[tuple[str, dict]]:
    return sorted(it.get("steps", {}).items(), key=lambda kv: kv[1].get("order", 0))
