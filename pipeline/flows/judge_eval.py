"""Flow: `arena judge-eval PAIRS --out DIR`, a judge's agreement with people.

Any judge of a roster plays both games of every pair people have labelled
(pipeline/judge_eval/pairs.py); its verdicts, combined by the battle rules, are
compared with the crowd's label (pipeline/judge_eval/metrics.py), beside the
same judge's probability-weighted scores and recorded verdicts of other judges
(the file's gpt4_verdict, `--recorded FILE`). `prepare_judge_eval` checks
everything (roster, judge, template, pairs, recorded files) before a cluster
starts; `run_judge_eval` judges what the game cache lacks and writes the report.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from arena_models.judge import judged_again, load_template
from arena_models.roster import ModelSpec, backend_class, pick_model
from core.defaults import JUDGE, JUDGE_ROSTER, JUDGE_SEES_CHARS
from core.errors import UserError
from pipeline.battle.judging import JudgeOptions, make_judge
from pipeline.judge_eval.pairs import (
    LABELS,
    PairSet,
    RecordedVerdicts,
    gpt4_recorded,
    read_pairs,
    read_recorded,
)
from pipeline.judge_eval.report import write_report
from pipeline.judge_eval.run import eval_key, judge_pairs
from pipeline.judge_eval.table import judge_rows, people_reference, recorded_rows


@dataclass(frozen=True)
class JudgeEvalConfig:
    judge_roster: str = field(default=JUDGE_ROSTER, metadata={"help": "roster holding the judge"})
    judge: str = field(default=JUDGE, metadata={"help": "judge: an entry of the roster"})
    judge_template: str | None = field(
        default=None, metadata={"help": "judge prompt template file (default: the packaged one)"}
    )
    judge_retries: int = field(default=2, metadata={"help": "retries of unreadable verdicts"})
    judge_max_tokens: int | None = field(
        default=None, metadata={"help": "unset: the judge entry's sampling.max_tokens"}
    )
    max_answer_chars: int = field(
        default=JUDGE_SEES_CHARS, metadata={"help": "answer text the judge sees"}
    )
    expected_scores: bool = field(
        default=True,
        metadata={
            "help": "also report the judge's probability-weighted scores"
            " (judges whose backend gives token probabilities: vLLM, transformers)"
        },
    )
    recorded: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "JSONL of another judge's verdicts (pair_id, verdict x|y|tie), shown as a"
            " row beside it (repeatable)",
            "repeat": True,
        },
    )
    limit: int | None = field(
        default=None,
        metadata={"help": "N pairs, a stable sample spread over the file (by a hash of pair_id)"},
    )
    judge_chunk: int = field(default=32, metadata={"help": "games per judge task"})
    rejudge_errors: bool = field(
        default=False,
        metadata={
            "help": "judge unreadable verdicts again instead of reusing them (games the judge"
            " never answered are always judged again)"
        },
    )

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.judge_retries < 0 or self.judge_chunk < 1 or self.max_answer_chars < 1:
            raise UserError(
                "--judge-retries must be >= 0, --judge-chunk and --max-answer-chars >= 1"
            )
        if self.judge_max_tokens is not None and self.judge_max_tokens < 1:
            raise UserError(f"--judge-max-tokens {self.judge_max_tokens}: expected at least 1")


@dataclass(frozen=True)
class JudgeEvalSetup:
    """A checked judge evaluation: the pairs, the judge and how it judges, recorded rows."""

    pairs_path: str
    pairs: PairSet
    judge: ModelSpec
    options: JudgeOptions
    recorded: list[RecordedVerdicts]
    config: JudgeEvalConfig

    @property
    def resources(self) -> dict[str, float]:
        return self.judge.resources


def prepare_judge_eval(pairs, config: JudgeEvalConfig = JudgeEvalConfig()) -> JudgeEvalSetup:
    """Every check, as a UserError, before any cluster: judge, template, pairs, recorded."""
    judge = pick_model(config.judge_roster, config.judge, "--judge")
    load_template(config.judge_template)
    probabilities = hasattr(backend_class(judge.backend), "continuation_probabilities")
    options = JudgeOptions(
        config.judge_template,
        config.judge_retries,
        config.judge_max_tokens or judge.sampling.max_tokens,
        config.max_answer_chars,
        distributions=config.expected_scores and probabilities,
    )
    make_judge(judge, options)  # cheap (nothing loads), and refuses what cannot work
    pair_set = read_pairs(pairs).limited(config.limit)
    recorded = [r for r in [gpt4_recorded(pair_set)] if r]
    recorded += [read_recorded(path) for path in config.recorded]
    return JudgeEvalSetup(str(pairs), pair_set, judge, options, recorded, config)


def command_line(pairs: str, out, config: JudgeEvalConfig) -> str:
    """The `arena judge-eval` command that reproduces a run (non-default options only)."""
    words = ["arena", "judge-eval", str(pairs), "--out", str(out)]
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value == f.default:
            continue
        flag = "--" + ("no-" if value is False else "") + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag)
        elif isinstance(value, tuple):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def run_judge_eval(client, setup: JudgeEvalSetup, out, *, progress: bool = True) -> dict:
    """Judge both games of every pair (what the cache lacks), write report.md,
    judge_eval.json, verdicts.parquet and agreement.png under `out`; returns the figures."""
    started = time.time()
    out = Path(out)
    games, run = judge_pairs(
        client,
        setup.judge,
        setup.options,
        setup.pairs.pairs,
        out,
        chunk=setup.config.judge_chunk,
        rejudge_errors=setup.config.rejudge_errors,
        progress=progress,
    )
    pairs = setup.pairs.pairs
    rows = judge_rows(setup.judge.name, pairs, games) + recorded_rows(pairs, setup.recorded)
    known = {p.pair_id for p in setup.pairs.pairs}
    result = {
        "judge": setup.judge.name,
        "judge_key": eval_key(setup.judge, setup.options),
        "options": dataclasses.asdict(setup.options),
        "pairs_file": setup.pairs.source,
        "rows_read": setup.pairs.rows,
        "quarantined": len(setup.pairs.quarantine),
        "quarantine": setup.pairs.quarantine,
        "limit": setup.config.limit,
        "pairs": len(setup.pairs.pairs),
        "human_labels": {
            label: sum(p.human == label for p in setup.pairs.pairs) for label in LABELS
        },
        "rows": rows,
        "people": people_reference(pairs),
        "recorded": [
            {
                "name": r.name,
                "source": r.source,
                "verdicts": len(r.verdicts),
                "unmatched": len(set(r.verdicts) - known),
                "quarantine": r.quarantine,
            }
            for r in setup.recorded
        ],
        "run": {**run, "seconds": round(time.time() - started, 2)},
        "command": command_line(setup.pairs_path, out, setup.config),
    }
    write_report(result, games, out)
    failed = [g["error"] for g in games if g["error"] is not None]
    if games and len(failed) == len(games):  # nothing measured: the run has failed
        common, count = Counter(failed).most_common(1)[0]
        raise UserError(
            f"judge {setup.judge.name} gave no verdict in any of {len(games)} games:"
            f" {common} ({count} of {len(games)}); a rerun judges them again"
            f"{'' if judged_again(common) else ' with --rejudge-errors'}"
            f" (report: {out / 'report.md'})"
        )
    return result


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _row(result: dict, scores: str, rule: str | None = "total") -> dict | None:
    return next((r for r in result["rows"] if r["scores"] == scores and r["rule"] == rule), None)


def agreement_line(result: dict, scoring: str = "discrete") -> str:
    """One line: how often the judge (rule total, its `scoring`) agrees with the crowd,
    ties counted and not, beside GPT-4's recorded verdicts on the same pairs."""
    judge = _row(result, scoring) or _row(result, "discrete")
    gpt4 = next((r for r in result["rows"] if r["name"] == "gpt-4 (recorded)"), None)
    how = " (expected scores)" if judge["scores"] == "expected" else ""

    def versus(key: str, n: str) -> str:
        return f" (GPT-4, recorded: {_pct(gpt4[key])} of {gpt4[n]})" if gpt4 else ""

    return (
        f"judge {result['judge']}{how} agrees with people on"
        f" {_pct(judge['agreement_with_ties'])} of {judge['n_with_ties']} labelled pairs, ties"
        f" counted{versus('agreement_with_ties', 'n_with_ties')}, and on"
        f" {_pct(judge['agreement_without_ties'])} of the {judge['n_without_ties']} where both"
        f" pick a winner{versus('agreement_without_ties', 'n_without_ties')}; it calls"
        f" {_pct(judge['tie_rate'])} of pairs a tie"
    )


def judge_eval_report(result: dict, out) -> str:
    """The lines `arena judge-eval` prints."""
    out = Path(out)
    judge = _row(result, "discrete")
    run = result["run"]
    lines = [
        agreement_line(result),
        f"with ties: {_pct(judge['agreement_with_ties'])} of {judge['n_with_ties']};"
        f" position-consistent: {_pct(judge['consistency'])}; tie rate: {_pct(judge['tie_rate'])};"
        f" parse errors: {judge['parse_errors']} of {judge['games']} games",
    ]
    expected = _row(result, "expected")
    if expected:
        lines.append(
            f"expected scores: {_pct(expected['agreement_without_ties'])} of"
            f" {expected['n_without_ties']} without ties, {_pct(expected['agreement_with_ties'])}"
            " with ties"
        )
    lines += [
        f"pairs: {result['pairs']} ({result['quarantined']} rows quarantined); games judged now"
        f" {run['judged_now']}, from cache {run['from_cache']}",
        f"report: {out / 'report.md'} (figures: judge_eval.json, games: verdicts.parquet)",
    ]
    return "\n".join(lines)
