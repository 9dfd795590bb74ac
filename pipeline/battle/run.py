"""A battle run on a Dask client: prompts -> answers -> verdicts -> records and summary.

Layout of `out`:
    battles/    battle records: core.schemas.BATTLE (one row per game), plus the prompt's
                eval-set subset and cluster
    combined/   one row per (prompt, pair): the two games combined by the chosen rule
    summary.json, summary.md
    browser.html  every battle to read, with the leaderboard (browser.py)
    _work/prompts.parquet   the prompts every task reads
The caches (default out/_cache) hold every answer and verdict ever made; a run
asks models only for answers the cache lacks and the judge only for games it
lacks, so a killed run resumes and a grown roster costs only its new pairs.
Answer tasks go model by model (each model loads once per worker and the next
model does not compete with it for memory) and carry the model's resources
(e.g. {"GPU": 1} for vLLM); judge tasks carry the judge's.
"""

from __future__ import annotations

import time
from pathlib import Path

from arena_models.cache import AnswerCache, VerdictCache
from core.hashing import folder_fingerprint
from core.parquet_io import write_json_atomic, write_text_atomic
from core.submit import fixed_chunks, run_tasks
from pipeline.battle.answers import answer_chunk
from pipeline.battle.browser import BROWSER, write_browser
from pipeline.battle.config import BattleConfig
from pipeline.battle.cost import battle_cost, stage_row
from pipeline.battle.judging import JudgeOptions, answers_key, judge_chunk, judge_key
from pipeline.battle.prompts import load_prompts, write_prompts
from pipeline.battle.records import battle_records, combined_pairs, write_table
from pipeline.battle.schedule import battling_models, schedule
from pipeline.battle.summary import render, summarize

# What a battle run writes in its folder besides "_" work (jobs/outputs.py: nothing else).
OUTPUTS = ("battles", "combined", "summary.json", "summary.md", BROWSER)


def generate_answers(client, specs, prompt_ids, work, cache_root, config, progress) -> dict:
    """Answers each model still lacks, model by model. Returns per-model counts, the
    failures {(model, prompt_id): error} and each model's cost row (pipeline.battle.cost)."""
    cache = AnswerCache(cache_root)
    stats, failures, cost = {}, {}, []
    for spec in specs:
        started = time.perf_counter()
        cached = cache.keys(spec.name, spec.fingerprint())
        missing = [p for p in prompt_ids if p not in cached]
        # Fixed slices of the whole eval set, less what is cached (see fixed_chunks).
        chunks = [
            [p for p in c if p not in cached] for c in fixed_chunks(prompt_ids, config.answer_chunk)
        ]
        args = [(spec, c, str(work / "prompts.parquet"), str(cache_root)) for c in chunks if c]
        results = run_tasks(
            client,
            answer_chunk,
            args,
            desc=f"answers {spec.name}",
            resources=spec.resources,
            progress=progress,
        )
        for r in results:
            failures.update({(spec.name, pid): error for pid, error in r["failures"]})
        stats[spec.name] = {
            "needed": len(prompt_ids),
            "cached": len(prompt_ids) - len(missing),
            "generated": sum(r["answered"] for r in results),
            "failed": sum(len(r["failures"]) for r in results),
            "prompt_tokens": sum(r["prompt_tokens"] for r in results),
            "completion_tokens": sum(r["completion_tokens"] for r in results),
            "seconds": round(sum(r["seconds"] for r in results), 2),
        }
        made = stats[spec.name]
        cost.append(
            stage_row(
                "answers",
                spec.name,
                spec.resources,
                results,
                time.perf_counter() - started,
                from_cache=made["cached"],
                computed=made["generated"],
                failed=made["failed"],
            )
        )
    return {"stats": stats, "failures": failures, "cost": cost}


def _game_key(g: dict) -> tuple:
    return (g["prompt_id"], g["model_a"], g["model_b"], g["game"], g["answers_key"])


def _judge_chunks(games: list[dict], done: set, size: int) -> list[list[dict]]:
    """The games not yet judged, in fixed chunks of each pair's games in prompt order
    (see fixed_chunks): a model added to the roster leaves the old pairs' chunks alone."""
    by_pair = sorted(games, key=lambda g: (g["model_a"], g["model_b"]))  # stable: prompt order
    chunks = fixed_chunks(by_pair, size, group=lambda g: (g["model_a"], g["model_b"]))
    pending = [[g for g in c if _game_key(g) not in done] for c in chunks]
    return [c for c in pending if c]


def scheduled_games(battles, specs, cache_root) -> list[dict]:
    """Both games of every battle, with the answer keys, or the reason an answer is missing."""
    fingerprints = {s.name: s.fingerprint() for s in specs}
    cache = AnswerCache(cache_root)
    have = {m: cache.keys(m, fp) for m, fp in fingerprints.items()}
    games = []
    for pid, a, b in battles:
        lacking = [m for m in (a, b) if pid not in have[m]]
        for game in (1, 2):
            games.append(
                {
                    "prompt_id": pid,
                    "model_a": a,
                    "model_b": b,
                    "game": game,
                    "key_a": fingerprints[a],
                    "key_b": fingerprints[b],
                    "answers_key": None
                    if lacking
                    else answers_key(fingerprints[a], fingerprints[b]),
                    "lacking": lacking,
                }
            )
    return games


def battle_models(
    client,
    specs: list,
    judge,
    evalset: str | Path,
    out: str | Path,
    config: BattleConfig = BattleConfig(),
    *,
    cache: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Battle the roster `specs` (ModelSpecs) on the eval set, judged by `judge` (a ModelSpec).
    Writes records, combined pairs and the summary under `out`; returns the summary."""
    started, clock = time.time(), time.perf_counter()
    out = Path(out)
    cache_root = Path(cache) if cache else out / "_cache"
    work = out / "_work"
    # Read in the driver before any task: recorded answers say which prompts they cover.
    names = battling_models([s.name for s in specs], config) if config.answerable_only else []
    prompts, left_out = load_prompts(evalset, config.limit, [s for s in specs if s.name in names])
    write_prompts(prompts, work / "prompts.parquet")
    prompt_ids = prompts.column("prompt_id").to_pylist()
    battles = schedule(prompt_ids, [s.name for s in specs], config)
    playing = {m for _, a, b in battles for m in (a, b)}
    players = [s for s in specs if s.name in playing]

    answered = generate_answers(client, players, prompt_ids, work, cache_root, config, progress)
    answers_done, judge_started = time.time(), time.perf_counter()

    options = JudgeOptions(
        config.judge_template,
        config.judge_retries,
        config.judge_max_tokens or judge.sampling.max_tokens,
        config.max_answer_chars,
        config.judge_scoring or judge.scoring,
    )
    key = judge_key(judge, options)
    games = scheduled_games(battles, players, cache_root)
    for g in games:
        if g["lacking"]:
            g["missing"] = "; ".join(
                f"no answer from {m}: {answered['failures'].get((m, g['prompt_id']), 'not in cache')}"
                for m in g["lacking"]
            )
    verdicts = VerdictCache(cache_root)
    done = verdicts.keys(judge.name, key, rejudge_errors=config.rejudge_errors)
    judgeable = [g for g in games if g["answers_key"]]
    pending = [g for g in judgeable if _game_key(g) not in done]
    task_games = [
        [
            {k: g[k] for k in ("prompt_id", "model_a", "model_b", "game", "key_a", "key_b")}
            for g in c
        ]
        for c in _judge_chunks(judgeable, done, config.judge_chunk)
    ]
    args = [(judge, options, c, str(work / "prompts.parquet"), str(cache_root)) for c in task_games]
    judged = run_tasks(
        client,
        judge_chunk,
        args,
        desc=f"judge {judge.name}",
        resources=judge.resources,
        progress=progress,
    )
    judge_done = time.time()
    verdicts_now = sum(r["judged"] for r in judged)
    judge_row = stage_row(
        "judge",
        judge.name,
        judge.resources,
        judged,
        time.perf_counter() - judge_started,
        from_cache=len(judgeable) - len(pending),
        computed=verdicts_now,
        failed=sum(r["errors"] for r in judged),
        games=verdicts_now,
    )

    records = battle_records(games, verdicts.read(judge.name, key, prompt_ids), judge.name, prompts)
    combined = combined_pairs(records, config.combine)
    manifest = {
        "judge": judge.name,
        "judge_key": key,
        "models": [s.name for s in players],
        # Where each model's answers are, so the flywheel can read the texts behind a record.
        "answer_keys": {s.name: s.fingerprint() for s in players},
        "cache": str(cache_root.resolve()),
        "evalset": folder_fingerprint(Path(evalset)),
        "config": {k: v for k, v in config.__dict__.items()},
    }
    write_table(records, out / "battles", manifest)
    write_table(combined, out / "combined", manifest)
    run = {
        "prompts_left_out": left_out,
        "answers": answered["stats"],
        "judge": {
            "judged": verdicts_now,
            "reused": judge_row["from_cache"],
            "errors": judge_row["failed"],
            "retried": sum(r["retried"] for r in judged),
            "prompt_tokens": sum(r["prompt_tokens"] for r in judged),
            "completion_tokens": sum(r["completion_tokens"] for r in judged),
        },
        "seconds": {
            "answers": answers_done - started,
            "judge": judge_done - answers_done,
            "total": time.time() - started,
        },
        # Up to the records and the combined pairs; the summary and the page come after.
        "cost": battle_cost([*answered["cost"], judge_row], time.perf_counter() - clock),
    }
    summary = summarize(
        records, combined, [s.name for s in players], judge.name, config.combine, run
    )
    write_json_atomic(summary, out / "summary.json")
    write_text_atomic(render(summary), out / "summary.md")
    write_browser(out)
    return summary
