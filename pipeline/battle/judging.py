"""The judge task: a chunk of games -> verdicts, appended to the judge's cache.

A game is (prompt_id, model_a, model_b, game). Game 1 shows model_a's answer as
"Answer A"; game 2 swaps the two. Scores come back by position and are stored
by model, so score_a is always model_a's score, whichever game.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from arena_models.cache import VERDICT, AnswerCache, VerdictCache
from arena_models.judge import JudgeItem, PairwiseJudge, load_template
from arena_models.roster import make_backend
from core.defaults import JUDGE_SEES_CHARS
from core.schemas import short_hash
from pipeline.battle.prompts import read_prompts


@dataclass(frozen=True)
class JudgeOptions:
    """`scoring`: discrete (the written 1-10 scores, the paper's) or expected (the
    probability-weighted scores); `distributions`: compute the expected scores even when
    the written ones decide (judge evaluation reports both)."""

    template: str | None = None
    retries: int = 2
    max_tokens: int = 128
    max_answer_chars: int = JUDGE_SEES_CHARS
    scoring: str = "discrete"
    distributions: bool = False

    @property
    def computes_expected(self) -> bool:
        return self.distributions or self.scoring == "expected"


def answers_key(key_a: str, key_b: str) -> str:
    """Which two cached answers a verdict is about (their models' sampling keys)."""
    return short_hash(f"{key_a}\x00{key_b}", 8)


def make_judge(spec, options: JudgeOptions):
    return PairwiseJudge(
        make_backend(spec),
        options.template,
        retries=options.retries,
        max_tokens=options.max_tokens,
        seed=spec.sampling.seed,
        constraint=spec.constraint,
        distributions=options.computes_expected,
    )


def judge_key(spec, options: JudgeOptions) -> str:
    """Verdicts are reused only from the same judge entry, template and settings."""
    template = load_template(options.template)
    settings = (
        options.retries,
        options.max_tokens,
        options.max_answer_chars,
        options.scoring,
        options.computes_expected,
    )
    blob = f"{spec.fingerprint()}\x00{template}\x00{settings}"
    return short_hash(blob, 8)


def judge_chunk(
    spec, options: JudgeOptions, games: list[dict], prompts_path: str, cache_root: str
) -> dict:
    """`games`: dicts with prompt_id, model_a, model_b, game, key_a, key_b (answer keys).
    Returns counts, tokens and seconds of this chunk."""
    started = time.perf_counter()
    ids = sorted({g["prompt_id"] for g in games})
    prompts = read_prompts(prompts_path, ids)
    cache = AnswerCache(Path(cache_root))
    answers: dict[tuple[str, str], list[str]] = {}
    for model, key in {
        (g[m], g[k]) for g in games for m, k in (("model_a", "key_a"), ("model_b", "key_b"))
    }:
        for pid, row in cache.lookup(model, key, ids).items():
            answers[(model, pid)] = row["answers"]
    items = []
    for g in games:
        a, b = answers[(g["model_a"], g["prompt_id"])], answers[(g["model_b"], g["prompt_id"])]
        first, second = (a, b) if g["game"] == 1 else (b, a)
        items.append(
            JudgeItem.from_dialogue(
                prompts[g["prompt_id"]], first, second, options.max_answer_chars
            )
        )
    judge = make_judge(spec, options)
    key = judge_key(spec, options)
    verdicts = judge.judge(items)
    rows = []
    for g, v in zip(games, verdicts):
        first, second = (
            (v.expected_first, v.expected_second)
            if options.scoring == "expected"
            else (v.score_first, v.score_second)
        )
        score_a, score_b = (first, second) if g["game"] == 1 else (second, first)
        expected_a, expected_b = (
            (v.expected_first, v.expected_second)
            if g["game"] == 1
            else (v.expected_second, v.expected_first)
        )
        rows.append(
            {
                "judge": spec.name,
                "judge_key": key,
                "prompt_id": g["prompt_id"],
                "model_a": g["model_a"],
                "model_b": g["model_b"],
                "game": g["game"],
                "answers_key": answers_key(g["key_a"], g["key_b"]),
                "score_a": score_a,
                "score_b": score_b,
                "expected_a": expected_a,
                "expected_b": expected_b,
                "error": v.error,
                "explanation": v.explanation,
                "raw": v.raw[-1] if v.raw else "",
                "constraint": v.constraint,
                "finish_reason": v.finish_reason,
                "attempts": v.attempts,
                "prompt_tokens": v.prompt_tokens,
                "completion_tokens": v.completion_tokens,
            }
        )
    VerdictCache(Path(cache_root)).judge(spec.name).append(pa.Table.from_pylist(rows, VERDICT))
    return {
        "judged": len(rows),
        "errors": sum(v.error is not None for v in verdicts),
        "retried": sum(v.attempts > 1 for v in verdicts),
        "prompt_tokens": sum(v.prompt_tokens for v in verdicts),
        "completion_tokens": sum(v.completion_tokens for v in verdicts),
        "seconds": time.perf_counter() - started,
    }
