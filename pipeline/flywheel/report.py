"""An iteration's report, OUT/iteration-i/report.md with its PNGs: what was battled, what
data each stage kept from which source and why the rest was dropped, the score gaps,
how many rows trl actually trained on, the loss curves, the ratings before and
after, and what each phase cost. Written from the state entry and the files the steps
left, so a person can open it first and a notebook can read the same files."""

from __future__ import annotations

import json
from pathlib import Path

from core.parquet_io import atomic_path, write_text_atomic
from pipeline.battle.cost import cost_section
from pipeline.flywheel.cost import iteration_cost
from pipeline.flywheel.state import ordered_steps

KINDS = ("sft", "dpo", "reward", "rl")


def write_iteration_report(here: Path, it: dict, number: int) -> Path:
    steps = it.get("steps", {})
    manifests = {k: _json(here / k / "data" / "_manifest.json") for k in KINDS}
    trainings = {
        k: _json(here / k / ("model" if k == "reward" else "checkpoint") / "_training.json")
        for k in KINDS
    }
    pictures = []
    if plot_gaps(
        {k: m for k, m in manifests.items() if m and m.get("gap_histogram")}, here / "gaps.png"
    ):
        pictures.append("![score gaps](gaps.png)")
    if plot_losses({k: t for k, t in trainings.items() if t}, here / "loss.png"):
        pictures.append("![training loss](loss.png)")

    start, final = it.get("start_model", {}), it.get("final_model", {})
    lines = [
        f"# Flywheel iteration {number}",
        "",
        f"{start.get('name')} -> **{final.get('name')}**, against {', '.join(it.get('opponents', []))},"
        f" judged by {it.get('judge')}. Slices {it.get('slices')}; thresholds {it.get('thresholds')}.",
        "",
    ]
    rated = steps.get("rate", {})
    if rated.get("before"):
        lines += [
            "## Ratings before and after",
            "",
            "| model | rating | 95% CI | rank |",
            "|---|---:|---:|---:|",
            _rating_row(start.get("name"), rated["before"]),
            _rating_row(final.get("name"), rated["after"]),
            "",
            f"On {rated['prompts']} eval-set prompts, with the opponents; full table:"
            " [leaderboard](rate/leaderboard/leaderboard.md), ![ratings](rate/leaderboard/ratings.png)",
            "",
        ]
    else:
        lines += [f"Ratings: {rated.get('line', 'not rated')}.", ""]
    lines += ["## Steps", "", "| step | result |", "|---|---|"]
    lines += [f"| {name} | {r.get('line', '')} |" for name, r in ordered_steps(it)]
    lines.append("")
    for kind in KINDS:
        manifest, training = manifests[kind], trainings[kind]
        if not manifest:
            continue
        lines += [f"## {kind}", ""]
        trained = "not trained"
        if training:
            trained = (
                f"{training.get('rows_trained')} ({training.get('rows_truncated') or 0} cut at"
                f" max_length {training.get('config', {}).get('max_length')})"
            )
        lines.append(f"Rows selected: {manifest.get('rows')}; trained by trl: {trained}.")
        for label, counts in _sources(manifest).items():
            lines.append(f"- {label}: " + ", ".join(f"{m} {n}" for m, n in sorted(counts.items())))
        dropped = manifest.get("dropped") or {}
        if dropped:
            lines.append("- dropped: " + ", ".join(f"{n} {r}" for r, n in sorted(dropped.items())))
        if training:
            lines.append(
                f"- training: {training.get('steps')} optimizer steps over"
                f" {training.get('rows_seen')} rows, final loss {_number(training.get('final_loss'))},"
                f" {training.get('tokens_per_second')} tokens/s on {training.get('device')}"
            )
        lines.append("")
    lines += cost_section(
        iteration_cost(here),
        "What each phase computed when it ran, per model (pipeline/flywheel/cost.py): worker"
        " seconds are the tasks' own, GPU-seconds for tasks holding a GPU slot; a training's"
        " are its trainer's.",
    )
    lines += pictures
    path = here / "report.md"
    write_text_atomic("\n".join(lines).rstrip() + "\n", path)
    return path


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rating_row(name, r: dict) -> str:
    return (
        f"| {name} | {r['rating']:.1f} | {r['lower'] - r['rating']:+.1f} /"
        f" {r['upper'] - r['rating']:+.1f} | {r['rank']} |"
    )


def _sources(manifest: dict) -> dict[str, dict]:
    """{label: {model: rows}} of a shard manifest's per-source counts."""
    labels = {
        "source_model": "completions from",
        "chosen_model": "chosen answers from",
        "rejected_model": "rejected answers from",
    }
    return {labels.get(k, k): v for k, v in (manifest.get("sources") or {}).items() if v}


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def plot_gaps(manifests: dict[str, dict], path: Path) -> bool:
    """One bar chart per kind: decided pairs by score gap, the threshold marked."""
    if not manifests:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(manifests), figsize=(4.5 * len(manifests), 3.2), squeeze=False)
    for ax, (kind, m) in zip(axes[0], manifests.items()):
        bins = sorted((float(k), n) for k, n in m["gap_histogram"].items())
        ax.bar(
            [b for b, _ in bins], [n for _, n in bins], width=0.45, align="edge", color="#4C72B0"
        )
        threshold = next(iter((m.get("thresholds") or {}).values()), None)
        if threshold is not None:
            ax.axvline(
                float(threshold), color="#C44E52", linestyle="--", label=f"gap >= {threshold}"
            )
            ax.legend(fontsize=8)
        ax.set_title(f"{kind}: pairs by score gap")
        ax.set_xlabel("winner's minus loser's score (per game)")
        ax.set_ylabel("pairs")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True


def plot_losses(trainings: dict[str, dict], path: Path) -> bool:
    """Training loss per logged step, one line per trainer."""
    curves = {k: t.get("losses") or [] for k, t in trainings.items()}
    curves = {k: c for k, c in curves.items() if c}
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind, points in curves.items():
        steps = [p["step"] if isinstance(p, dict) else n + 1 for n, p in enumerate(points)]
        values = [p["loss"] if isinstance(p, dict) else p for p in points]
        ax.plot(steps, values, marker="o", label=kind)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True
