"""Selection: battle runs of a target model -> the rows of an SFT, DPO or reward shard.

In: battle runs (pipeline/flywheel/battle_run.py) where the target met opponents, and a
SelectionConfig. Out: (rows, dropped, stats), rows in the shard schema of the kind
(pipeline/flywheel/shards.py). The rules (Arena Learning, arXiv 2407.10627):
- The gap of a pair is the winner's summed score over both games minus the loser's,
  halved: a per-game difference on the judge's 1-10 scale. Who won is the run's combine
  rule (the combined table), so a tie under `consistent` stays a tie whatever the sums.
- sft: on each prompt the target lost with a gap of at least `sft_gap`, the best winner
  (highest score; then larger gap, then name) gives the completion: its final answer,
  after the prompt with its own earlier answers in place (multi-turn prompts).
- dpo: each decided pair with a gap of at least `dpo_gap`: the winner's answer is chosen
  (the target's own when it won), the loser's rejected. A chosen answer (and an SFT
  completion) cut off at max_tokens is dropped; a rejected one may be cut off. Both answers must follow the same
  prompt, so multi-turn prompts (answers to earlier turns differ) are left out.
- reward: like dpo with `reward_gap`, as whole conversations (the implicit prompt of
  trl's RewardTrainer), so multi-turn prompts stay; `margin` is the gap.
Every target pair of every run ends up in a row or in `dropped`, with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from arena_models.multiturn import pending_turns
from core.errors import UserError
from pipeline.flywheel.battle_run import BattleRun, load_battle_run
from pipeline.flywheel.config import MAX_GAP
from pipeline.flywheel.shards import DROPPED, SCHEMAS, sort_key, write_shards

KINDS = ("sft", "dpo", "reward")
BIN = 0.5  # width of the gap histogram's bins


@dataclass(frozen=True)
class SelectionConfig:
    """`kind`: sft, dpo or reward; the gap thresholds are per-game score differences."""

    kind: str = field(default="sft", metadata={"choices": KINDS, "help": "which shard"})
    sft_gap: float = field(
        default=3.0, metadata={"help": "sft: least gap by which the target lost (paper: 3, then 1)"}
    )
    dpo_gap: float = field(default=2.0, metadata={"help": "dpo: least gap of a pair (paper: 2)"})
    reward_gap: float = field(default=2.0, metadata={"help": "reward: least gap of a pair"})
    shard_rows: int = field(default=10_000, metadata={"help": "rows per Parquet part"})
    jsonl: bool = field(default=False, metadata={"help": "also write the rows as JSON lines"})

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"selection kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        for name in ("sft_gap", "dpo_gap", "reward_gap"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_GAP:
                raise UserError(f"{name} {value}: expected 0 <= gap <= {MAX_GAP:g} (scores 1-10)")
        if self.shard_rows < 1:
            raise UserError(f"shard_rows {self.shard_rows}: expected at least 1")

    @property
    def gap(self) -> float:
        """The threshold of this kind."""
        return getattr(self, f"{self.kind}_gap")


class Selection(NamedTuple):
    rows: pa.Table  # shards.SCHEMAS[kind], sorted
    dropped: pa.Table  # shards.DROPPED, sorted
    stats: dict  # sources, dropped counts by class, gap histogram, runs, judges, targets


class Drops:
    """Dropped rows with a reason and its stable class (the manifest counts classes)."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, run: BattleRun, pid: str, a: str | None, b: str | None, cls: str, why: str):
        row = {"prompt_id": pid, "model_a": a, "model_b": b, "battle_run": run.path}
        self.rows.append({**row, "reason": why, "class": cls})


def select(
    runs: str | Path | Sequence[str | Path],
    target: str | Sequence[str] | None,
    config: SelectionConfig,
    *,
    slices: int | None | Sequence[int | None] = None,
) -> Selection:
    """Rows of `config.kind` from one battle run or several (accumulated data). `target`
    and `slices` (the training-pool slice each run battled on, provenance only): one for
    every run, or one per run; target None: each run's own `--target`. A prompt (sft) or
    pair of models on a prompt (dpo, reward) taken from a run is not taken again from a
    later one."""
    paths = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not paths:
        raise UserError("selection needs at least one battle run")
    loaded = [load_battle_run(p, t) for p, t in zip(paths, _per_run(target, len(paths), "target"))]
    slices = _per_run(slices, len(paths), "slice")
    drops, rows, pairs = Drops(), [], []
    pick = _select_sft if config.kind == "sft" else _select_pairs
    for run, k in zip(loaded, slices):
        run_pairs = [_pair(r, run.target) for r in run.pairs_of(run.target)]
        pairs += run_pairs
        rows += pick(run, run.target, k, run_pairs, config, drops)
    rows = _first_per_key(rows, config.kind, drops)
    rows.sort(key=sort_key(config.kind))
    dropped = sorted(
        drops.rows,
        key=lambda r: tuple(
            r[c] or "" for c in ("prompt_id", "model_a", "model_b", "battle_run", "reason")
        ),
    )
    stats = {
        "pairs": len(pairs),
        "decided": sum(p["winner"] is not None for p in pairs),
        "gap_histogram": _histogram([p["gap"] for p in pairs if p["winner"] is not None]),
        "sources": _sources(rows, config.kind),
        "dropped": _count(r["class"] for r in dropped),
        "battle_runs": [r.path for r in loaded],
        "slices": sorted({k for k in slices if k is not None}),
        "judge": _one_or_all(r.judge for r in loaded),
        "target": _one_or_all(r.target for r in loaded),
    }
    table = pa.Table.from_pylist(rows, SCHEMAS[config.kind])
    return Selection(table, pa.Table.from_pylist(dropped, DROPPED), stats)


def select_shard(
    runs: str | Path | Sequence[str | Path],
    target: str | Sequence[str] | None,
    config: SelectionConfig,
    out: str | Path,
    *,
    slices: int | None | Sequence[int | None] = None,
) -> dict:
    """`select`, then write the shard folder `out` (pipeline/flywheel/shards.py); returns
    its manifest."""
    return write_shards(select(runs, target, config, slices=slices), config, out)


def _per_run(value, n: int, what: str) -> list:
    if value is None or isinstance(value, (str, int)):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise UserError(f"{len(value)} {what}s for {n} battle runs: give one, or one per run")
    return value


def _pair(row: dict, target: str) -> dict:
    """A target pair of the combined table, seen from the target: who won, by what gap."""
    a, b = row["model_a"], row["model_b"]
    opponent = b if a == target else a
    pair = {**row, "opponent": opponent, "gap": None, "won_by": None}
    if row["winner"] is None:
        return pair
    target_total, opponent_total = (
        (row["score_a"], row["score_b"]) if a == target else (row["score_b"], row["score_a"])
    )
    pair["target_score"] = target_total / 2
    pair["opponent_score"] = opponent_total / 2
    # Rounded: float32 sums of expected scores must not fall just below a threshold.
    pair["gap"] = round(abs(target_total - opponent_total) / 2, 4)
    pair["won_by"] = None if row["winner"] == "tie" else row[row["winner"]]
    return pair


def _triage(run: BattleRun, pair: dict, threshold: str, gap: float, drops: Drops, target=None):
    """True when a pair has a winner (not `target`, when given) and a gap >= `gap`;
    otherwise it is dropped with the reason."""
    where = (run, pair["prompt_id"], pair["model_a"], pair["model_b"])
    if pair["winner"] is None:
        drops.add(*where, "judge error", f"judge error: {pair['error']}")
    elif target is not None and pair["won_by"] in (None, target):
        drops.add(*where, "target won or tied", "target won or tied")
    elif pair["won_by"] is None:
        drops.add(*where, "tie", "tie")
    elif pair["gap"] < gap:
        drops.add(*where, "gap below threshold", f"gap {pair['gap']:g} below {threshold} {gap:g}")
    else:
        return True
    return False


def _answer_problem(
    row: dict | None, model: str, turns: int, *, cut_ok: bool = False
) -> tuple[str, str] | None:
    """(class, reason) when a model's cached answer cannot be trained on, else None.
    `cut_ok`: a rejected answer may have been cut off at max_tokens (it is what the model
    said); a chosen one or a completion may not, since trl ends it with EOS and would teach
    the model to stop mid-sentence."""
    if row is None:
        return "answer missing", f"answer missing: no cached answer of {model}"
    if len(row["answers"]) != turns:
        return (
            "answer missing",
            f"answer missing: {model} has {len(row['answers'])} answers for {turns} user turns",
        )
    if "length" in (row["finish_reasons"] or []) and not cut_ok:
        return "answer cut off", f"{model}'s answer cut off at max_tokens"
    if any(not (text or "").strip() for text in row["answers"]):
        return "empty answer", f"empty answer from {model}"
    return None


def _conversation(messages: list[dict], answers: list[str]) -> list[dict]:
    """The prompt with a model's answers after the user turns it answered."""
    pending = pending_turns(messages)
    by_turn = dict(zip(pending, answers))
    out = []
    for i, m in enumerate(messages):
        out.append({"role": m["role"], "content": m["content"]})
        if i in by_turn:
            out.append({"role": "assistant", "content": by_turn[i]})
    return out


def _provenance(run: BattleRun, pid: str, target: str, slice_: int | None) -> dict:
    return {
        "prompt_id": pid,
        "slice": slice_,
        "battle_run": run.path,
        "judge": run.judge,
        "target": target,
    }


def _select_sft(run, target, slice_, pairs, config, drops) -> list[dict]:
    by_prompt: dict[str, list[dict]] = {pid: [] for pid in run.prompts}
    for p in pairs:
        by_prompt.setdefault(p["prompt_id"], []).append(p)
    lost = []
    for pid, mine in by_prompt.items():
        if not mine:
            drops.add(run, pid, target, None, "not scheduled", "the target has no pair here")
        lost += [p for p in mine if _triage(run, p, "sft_gap", config.sft_gap, drops, target)]
    answers = _answers(run, lost)
    candidates: dict[str, list[dict]] = {}
    for p in lost:
        where = (run, p["prompt_id"], p["model_a"], p["model_b"])
        messages = run.prompts.get(p["prompt_id"])
        if messages is None:
            drops.add(*where, "prompt missing", "prompt missing from _work/prompts.parquet")
            continue
        answer = answers[p["opponent"]].get(p["prompt_id"])
        problem = _answer_problem(answer, p["opponent"], len(pending_turns(messages)))
        if problem:
            drops.add(*where, *problem)
            continue
        candidates.setdefault(p["prompt_id"], []).append({**p, "answers": answer["answers"]})
    rows = []
    for pid, cands in candidates.items():
        cands.sort(key=lambda p: (-p["opponent_score"], -p["gap"], p["opponent"]))
        best = cands[0]
        for p in cands[1:]:
            why = f"not the best winner ({best['opponent']} scored {best['opponent_score']:g})"
            drops.add(run, pid, p["model_a"], p["model_b"], "not the best winner", why)
        conversation = _conversation(run.prompts[pid], best["answers"])
        rows.append(
            {
                "prompt": conversation[:-1],
                "completion": conversation[-1:],
                **_provenance(run, pid, target, slice_),
                "source_model": best["opponent"],
                "target_score": best["target_score"],
                "source_score": best["opponent_score"],
                "gap": best["gap"],
            }
        )
    return rows


def _select_pairs(run, target, slice_, pairs, config, drops) -> list[dict]:
    threshold = f"{config.kind}_gap"
    kept = []
    for p in pairs:
        if not _triage(run, p, threshold, config.gap, drops):
            continue
        where = (run, p["prompt_id"], p["model_a"], p["model_b"])
        messages = run.prompts.get(p["prompt_id"])
        if messages is None:
            drops.add(*where, "prompt missing", "prompt missing from _work/prompts.parquet")
        elif config.kind == "dpo" and len(pending_turns(messages)) > 1:
            why = "multi-turn: the two answers condition on different earlier turns"
            drops.add(*where, "multi-turn", why)
        else:
            kept.append(p)
    answers = _answers(run, kept)
    rows = []
    for p in kept:
        pid, where = p["prompt_id"], (run, p["prompt_id"], p["model_a"], p["model_b"])
        messages = run.prompts[pid]
        chosen = p["won_by"]
        rejected = p["opponent"] if chosen == target else target
        found = {m: answers[m].get(pid) for m in (chosen, rejected)}
        turns = len(pending_turns(messages))
        problem = _answer_problem(found[chosen], chosen, turns) or _answer_problem(
            found[rejected], rejected, turns, cut_ok=True
        )
        if problem:
            drops.add(*where, *problem)
            continue
        good, bad = (_conversation(messages, found[m]["answers"]) for m in (chosen, rejected))
        if good[-1]["content"] == bad[-1]["content"]:
            drops.add(*where, "identical answers", "identical answers")
            continue
        scores = {m: p["target_score"] if m == target else p["opponent_score"] for m in found}
        if config.kind == "dpo":
            trl = {"prompt": good[:-1], "chosen": good[-1:], "rejected": bad[-1:]}
        else:
            trl = {"chosen": good, "rejected": bad, "margin": p["gap"]}
        rows.append(
            {
                **trl,
                **_provenance(run, pid, target, slice_),
                "chosen_model": chosen,
                "rejected_model": rejected,
                "chosen_score": scores[chosen],
                "rejected_score": scores[rejected],
                "gap": p["gap"],
            }
        )
    return rows


def _answers(run: BattleRun, pairs: list[dict]) -> dict[str, dict[str, dict]]:
    """model -> prompt_id -> cached answer row, for both sides of `pairs`."""
    wanted: dict[str, set[str]] = {}
    for p in pairs:
        for m in (p["model_a"], p["model_b"]):
            wanted.setdefault(m, set()).add(p["prompt_id"])
    return {m: run.answers(m, sorted(ids)) for m, ids in wanted.items()}


def _first_per_key(rows: list[dict], kind: str, drops: Drops) -> list[dict]:
    """One row per prompt (sft) or per prompt and pair of models (dpo, reward): the first
    run that gave it keeps it, a later run's copy is dropped."""
    seen: dict[tuple, str] = {}
    out = []
    for r in rows:
        models = (r["source_model"],) if kind == "sft" else (r["chosen_model"], r["rejected_model"])
        key = (r["prompt_id"],) if kind == "sft" else (r["prompt_id"], *sorted(models))
        if key in seen:
            a, b = sorted((r["target"], models[0])) if kind == "sft" else sorted(models)
            why = f"duplicate: already selected from battle run {seen[key]}"
            drops.rows.append(
                {
                    "prompt_id": r["prompt_id"],
                    "model_a": a,
                    "model_b": b,
                    "battle_run": r["battle_run"],
                    "reason": why,
                    "class": "duplicate",
                }
            )
            continue
        seen[key] = r["battle_run"]
        out.append(r)
    return out


def _histogram(gaps: list[float]) -> dict[str, int]:
    """Counts by gap, in bins [x, x + 0.5) keyed by x ("1.5"); a gap of 9 is in "9.0"."""
    counts: dict[str, int] = {}
    for g in gaps:
        key = f"{int(g / BIN) * BIN:.1f}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: float(kv[0])))


def _sources(rows: list[dict], kind: str) -> dict:
    if kind == "sft":
        return {"source_model": _count(r["source_model"] for r in rows)}
    return {
        "chosen_model": _count(r["chosen_model"] for r in rows),
        "rejected_model": _count(r["rejected_model"] for r in rows),
    }


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items()))


def _one_or_all(values) -> str | list[str]:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct
