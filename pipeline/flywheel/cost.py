"""What a flywheel iteration cost: its battle runs' cost blocks and its trainings, summed.

In: an iteration's folder (OUT/iteration-i): every battle run in it (`PHASE/battles/`,
whose summary.json carries a `cost` block, pipeline/battle/cost.py) and every trained
model (`PHASE/checkpoint/` or `PHASE/model/`, whose `_training.json` records the
trainer's measured seconds, its tokens and the resources its task held). Out: one cost
block, each stage named by its phase ("sft answers", "sft judge", "sft train", "rate
judge"), so a person reads what each phase cost per model; `total` is the iteration's.

A training row's worker seconds are the trainer's own (trl's `train()`, measured in the
task), counted in the resource its task held; loading the model is not in them. A battle
run's cost is its last run's (pipeline.battle.cost), so a resumed iteration reports what
its steps cost when they ran, and a step recorded before costs were kept adds nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.battle.cost import add_costs, battle_cost, relabel, stage_row
from pipeline.flywheel.training import RECORD

log = logging.getLogger(__name__)

# An iteration's phases in the order it runs them (pipeline/flows/flywheel.py's plan).
PHASES = ("sft", "dpo", "reward", "rl", "rate")


def training_cost(record: dict, stage: str, model: str) -> dict:
    """A cost block of one training (`_training.json`): one row in the resource the
    training task held."""
    resources = (record.get("config") or {}).get("resources") or {}
    seconds = float(record.get("seconds") or 0)
    trainer = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": seconds}
    row = stage_row(stage, model, resources, [trainer], seconds)
    row["train_tokens"] = int(record.get("train_tokens") or 0)
    return battle_cost([row], seconds)


def iteration_cost(folder: str | Path) -> dict | None:
    """The iteration folder's battle runs and trainings, summed (pipeline.battle.cost
    `add_costs`), phase by phase in the order an iteration runs them; None when it holds
    neither yet."""
    folder = Path(folder)
    phases = sorted(
        (p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else [],
        key=lambda p: (PHASES.index(p.name) if p.name in PHASES else len(PHASES), p.name),
    )
    blocks = []
    for phase in phases:
        summary = phase / "battles" / "summary.json"
        if summary.is_file():
            cost = json.loads(summary.read_text()).get("cost")
            if cost is None:
                log.debug("%s: no cost recorded (written before costs were kept)", summary)
            blocks.append(relabel(cost, phase.name))
        for record_path in sorted(phase.glob(f"*/{RECORD}")):
            record = json.loads(record_path.read_text())
            model = f"{phase.name}/{record_path.parent.name}"
            blocks.append(training_cost(record, f"{phase.name} train", model))
    return add_costs(blocks)
