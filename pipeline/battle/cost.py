"""What a run cost, per stage and model: tokens, seconds, cache hits, games per hour.

A cost block (the `cost` key of a battle run's summary.json) is
    {"stages": [row, ...], "total": {...}}
with one row per (stage, model): `answers` rows (one per model) and a `judge` row hold
    resource           GPU when the stage's tasks hold a GPU slot, else CPU
    tasks              tasks this run submitted
    from_cache         answers (verdicts) the caches already held
    computed           answers (verdicts) made now; `failed`: answers that failed now,
                       verdicts made now that carry an error
    prompt_tokens, completion_tokens   of what was made now, as the backends count them
    wall_seconds       the driver's clock around the stage's tasks
    worker_seconds     {resource: seconds}: the tasks' own measured durations, summed
                       (times the slots a task holds: GPU=2 counts twice)
    games, games_per_hour   (judge rows) games judged now, per hour of the stage's wall
A training row (pipeline/flywheel/cost.py) holds `train_tokens` instead of counts.
`total` sums the rows: tokens, worker_seconds, `answers` and `verdicts` ({from_cache,
computed, failed}), `games` (judged now); its wall_seconds is the run's whole wall time
and games_per_hour is per hour of it.

A run's cost is what that run did: a rerun served from the caches costs no tokens and
reports every answer and verdict from cache; what a killed run made before it died
shows as cache hits in the run that finishes. `add_costs` sums blocks (the battle runs
and trainings of a flywheel iteration, a job's steps); `cost_markdown` renders one,
`cost_section` a report's section around it.
"""

from __future__ import annotations

from collections.abc import Iterable

RATE = "games_per_hour"
# Which total a stage's counts add to.
COUNTED_AS = {"answers": "answers", "judge": "verdicts"}
COUNTS = ("from_cache", "computed", "failed")


def resource_of(resources: dict | None) -> str:
    """The resource a task's seconds are counted in: GPU when it holds a GPU slot."""
    return "GPU" if (resources or {}).get("GPU", 0) > 0 else "CPU"


def stage_row(
    stage: str,
    model: str,
    resources: dict | None,
    results: list[dict],
    wall_seconds: float,
    **counts: int,
) -> dict:
    """One (stage, model) row from the stage's task results (each with prompt_tokens,
    completion_tokens and its own `seconds`) and the counts (from_cache, computed, failed;
    games for a judge stage)."""
    resource = resource_of(resources)
    slots = (resources or {}).get("GPU", 1) if resource == "GPU" else 1
    row = {
        "stage": stage,
        "model": model,
        "resource": resource,
        "tasks": len(results),
        **counts,
        "prompt_tokens": sum(r["prompt_tokens"] for r in results),
        "completion_tokens": sum(r["completion_tokens"] for r in results),
        "wall_seconds": round(wall_seconds, 3),
        "worker_seconds": {resource: round(slots * sum(r["seconds"] for r in results), 3)},
    }
    return _rated(row)


def battle_cost(rows: list[dict], wall_seconds: float) -> dict:
    """A run's cost block: its stage rows and their total over the run's wall time."""
    total: dict = {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "wall_seconds": round(wall_seconds, 3),
        "worker_seconds": {},
        **{kind: dict.fromkeys(COUNTS, 0) for kind in COUNTED_AS.values()},
        "games": 0,
    }
    for row in rows:
        summed = {k: v for k, v in row.items() if k in ("prompt_tokens", "completion_tokens")}
        summed["worker_seconds"] = row["worker_seconds"]
        if "train_tokens" in row:
            summed["train_tokens"] = row["train_tokens"]
        kind = COUNTED_AS.get(row["stage"])
        if kind:
            summed[kind] = {k: row[k] for k in COUNTS}
        summed["games"] = row.get("games", 0)
        total = _add(total, summed)
    return {"stages": rows, "total": _rated(total)}


def add_costs(blocks: Iterable[dict | None]) -> dict | None:
    """Cost blocks summed: rows of the same (stage, model) add up, as do the totals
    (wall seconds included: the runs ran one after another); rates are recomputed.
    None for no block (None entries, runs written before costs, are skipped)."""
    rows: dict[tuple[str, str], dict] = {}
    total: dict | None = None
    for block in blocks:
        if not block:
            continue
        for row in block["stages"]:
            key = (row["stage"], row["model"])
            rows[key] = _add(rows[key], row) if key in rows else dict(row)
        total = block["total"] if total is None else _add(total, block["total"])
    if total is None:
        return None
    return {"stages": [_rated(r) for r in rows.values()], "total": _rated(total)}


def relabel(block: dict | None, prefix: str) -> dict | None:
    """The block with each stage named `prefix stage`, so summing it beside another step's
    keeps the two apart (the main job's battles and its flywheel's)."""
    if not block:
        return block
    rows = [{**r, "stage": f"{prefix} {r['stage']}"} for r in block["stages"]]
    return {"stages": rows, "total": block["total"]}


def _add(a: dict, b: dict) -> dict:
    """Numbers summed key by key, nested mappings likewise, names kept from `a`; rates
    left out (recomputed from the sums)."""
    out = dict(a)
    for key, value in b.items():
        if key == RATE:
            continue
        if isinstance(value, dict):
            out[key] = _add(a.get(key) or {}, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round((a.get(key) or 0) + value, 3)
        else:
            out.setdefault(key, value)
    return out


def _rated(row: dict) -> dict:
    """The row with games_per_hour from its games and wall seconds (None: none judged)."""
    if "games" not in row:
        return row
    games, wall = row["games"], row["wall_seconds"]
    return {**row, RATE: round(games / wall * 3600, 1) if games and wall > 0 else None}


def _seconds(worker: dict) -> str:
    return ", ".join(f"{v:,.1f} {k}-s" for k, v in sorted(worker.items())) or "0"


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    return "" if value is None else f"{value:,}"


def cost_section(cost: dict | None, note: str) -> list[str]:
    """A report's "## Cost" section: `note` (what the table covers), then the table; no
    lines for no cost."""
    if not cost:
        return []
    return ["## Cost", "", note, "", cost_markdown(cost).rstrip(), ""]


def cost_markdown(cost: dict | None) -> str:
    """The block as a Markdown table, a row per (stage, model) and the total."""
    if not cost:
        return ""
    rows, total = cost["stages"], cost["total"]
    trained = any("train_tokens" in r for r in rows)
    head = ["stage", "model", "resource", "from cache", "computed", "failed"]
    head += ["prompt tokens", "completion tokens", *(["trained tokens"] if trained else [])]
    head += ["wall s", "worker s", "games/h"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for r in rows:
        cells = [r["stage"], r["model"], r["resource"], *(_cell(r, k) for k in COUNTS)]
        cells += [_cell(r, "prompt_tokens"), _cell(r, "completion_tokens")]
        cells += [_cell(r, "train_tokens")] if trained else []
        cells += [f"{r['wall_seconds']:,.1f}", _seconds(r["worker_seconds"]), _cell(r, RATE)]
        lines.append("| " + " | ".join(cells) + " |")
    kinds = [k for k in COUNTED_AS.values() if k in total]
    counts = [", ".join(f"{total[k][c]:,} {k}" for k in kinds) for c in COUNTS]
    cells = ["**total**", "", "", *counts]
    cells += [_cell(total, "prompt_tokens"), _cell(total, "completion_tokens")]
    cells += [_cell(total, "train_tokens")] if trained else []
    cells += [f"{total['wall_seconds']:,.1f}", _seconds(total["worker_seconds"])]
    cells.append(_cell(total, RATE))
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
