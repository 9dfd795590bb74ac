"""The judge's two games per labelled pair, on the cluster, cached game by game.

Game 1 shows answer_x as "Answer A" and answer_y as "Answer B"; game 2 swaps
them. The judge scores by position; `game_rows` maps the scores back to x / y.
A game is keyed by its content (the judge's key, the prompt and the two answers
in the order shown), so the same game is never judged twice by the same judge
settings, whatever the file, the pair ids or `--limit`.

Cache: OUT/_games/<judge key>/chunk-<hash of its game keys>.parquet, written
atomically by the task that judged the chunk. A rerun reads every chunk, judges
only the games none of them holds, and a task retried after a lost worker
rewrites the same file name, so a killed run resumes without judging or
counting a game twice. Tasks go through core.submit with the judge's resources
({"GPU": 1} for vLLM); the judge loads once per worker (core/worker_cache.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from arena_models.judge import JudgeItem, judged_again
from core.parquet_io import remove_temporaries, write_parquet_atomic
from core.schemas import short_hash
from core.submit import fixed_chunks, run_tasks
from pipeline.battle.judging import JudgeOptions, judge_key, make_judge
from pipeline.judge_eval.pairs import LabelledPair

# What a task stores per game: the judge's reply by position, as it came.
GAME = pa.schema(
    [
        ("game_key", pa.string()),
        ("judge", pa.string()),
        ("judge_key", pa.string()),
        ("score_first", pa.float64()),
        ("score_second", pa.float64()),
        ("expected_first", pa.float64()),
        ("expected_second", pa.float64()),
        ("error", pa.string()),
        ("explanation", pa.string()),
        ("raw", pa.string()),  # the judge's last reply, verbatim
        ("attempts", pa.int16()),
        ("constraint", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
    ]
)


_BY_POSITION = ("score_first", "score_second", "expected_first", "expected_second")

# verdicts.parquet: one row per game of the evaluated pairs, scores by position (a, b:
# as shown) and by side (x, y), then the judge's reply as cached.
VERDICTS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("game", pa.int8()),
        ("shown_a", pa.string()),  # which side was shown as Answer A
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        *[(f"{kind}_{side}", pa.float64()) for kind in ("score", "expected") for side in "abxy"],
        *[f for f in GAME if f.name not in _BY_POSITION],
    ]
)


def eval_key(spec, options: JudgeOptions) -> str:
    """The battle judge key (entry, template text, settings) and every judge option."""
    return short_hash(f"{judge_key(spec, options)}\x00{options!r}", 8)


def pair_games(pairs: list[LabelledPair], key: str) -> list[dict]:
    """Both games of every pair, in pair order: what is shown as A and B, and the game key."""
    games = []
    for p in pairs:
        for game, shown_a in ((1, "x"), (2, "y")):
            first, second = (p.answer_x, p.answer_y) if shown_a == "x" else (p.answer_y, p.answer_x)
            games.append(
                {
                    "pair_id": p.pair_id,
                    "game": game,
                    "shown_a": shown_a,
                    "model_a": p.model_x if shown_a == "x" else p.model_y,
                    "model_b": p.model_y if shown_a == "x" else p.model_x,
                    "game_key": short_hash(f"{key}\x00{p.prompt}\x00{first}\x00{second}", 12),
                    "prompt": p.prompt,
                    "first": first,
                    "second": second,
                }
            )
    return games


def judge_games(spec, options: JudgeOptions, games: list[dict], folder: str) -> dict:
    """The task: judge a chunk of games, write their rows as one cache file, return counts."""
    started = time.time()
    items = [
        JudgeItem.from_dialogue(
            [{"role": "user", "content": g["prompt"]}],
            [g["first"]],
            [g["second"]],
            options.max_answer_chars,
        )
        for g in games
    ]
    verdicts = make_judge(spec, options).judge(items)
    key = eval_key(spec, options)
    rows = [
        {
            "game_key": g["game_key"],
            "judge": spec.name,
            "judge_key": key,
            "score_first": v.score_first,
            "score_second": v.score_second,
            # Probability-weighted scores, where the judge's backend gives them.
            "expected_first": v.expected_first,
            "expected_second": v.expected_second,
            "error": v.error,
            "explanation": v.explanation,
            "raw": v.raw[-1] if v.raw else "",
            "attempts": v.attempts,
            "constraint": v.constraint,
            "finish_reason": v.finish_reason,
            "prompt_tokens": v.prompt_tokens,
            "completion_tokens": v.completion_tokens,
        }
        for g, v in zip(games, verdicts, strict=True)
    ]
    name = f"chunk-{short_hash(''.join(g['game_key'] for g in games), 8)}.parquet"
    write_parquet_atomic(pa.Table.from_pylist(rows, GAME), Path(folder) / name)
    return {
        "judged": len(rows),
        "errors": sum(v.error is not None for v in verdicts),
        "prompt_tokens": sum(v.prompt_tokens for v in verdicts),
        "completion_tokens": sum(v.completion_tokens for v in verdicts),
        "seconds": time.time() - started,
    }


def cached_games(folder: Path) -> dict[str, dict]:
    """Every judged game in the cache folder, by game key; a verdict beats a failure of
    the same game (a chunk judged again is another file, in no time order)."""
    rows: dict[str, dict] = {}
    for part in sorted(folder.glob("chunk-*.parquet")):
        for row in pq.read_table(part, schema=GAME).to_pylist():
            old = rows.get(row["game_key"])
            if old is None or old["error"] is not None:
                rows[row["game_key"]] = row
    return rows


def judge_pairs(
    client,
    spec,
    options: JudgeOptions,
    pairs: list[LabelledPair],
    out: Path,
    *,
    chunk: int = 32,
    rejudge_errors: bool = False,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Judge both games of every pair (what the cache lacks, and the games the judge never
    answered: arena_models.judge.judged_again). Returns one row per game in pair order
    (what was shown, the verdict by position and by side) and the run's counts."""
    key = eval_key(spec, options)
    folder = Path(out).absolute() / "_games" / key  # workers may start elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    remove_temporaries(folder)
    games = pair_games(pairs, key)
    done = {
        k
        for k, row in cached_games(folder).items()
        if not judged_again(row["error"], rejudge_errors)
    }
    unique = list({g["game_key"]: g for g in games}.values())
    # Fixed slices of every game, less what is cached (see fixed_chunks).
    chunks = [[g for g in c if g["game_key"] not in done] for c in fixed_chunks(unique, chunk)]
    args = [(spec, options, c, str(folder)) for c in chunks if c]
    results = run_tasks(
        client,
        judge_games,
        args,
        desc=f"judge-eval {spec.name}",
        resources=spec.resources,
        unit="chunk",
        progress=progress,
    )
    judged = cached_games(folder)
    rows = []
    for g in games:
        verdict = judged[g["game_key"]]
        first, second = verdict["score_first"], verdict["score_second"]
        e_first, e_second = verdict["expected_first"], verdict["expected_second"]
        in_order = g["shown_a"] == "x"
        rows.append(
            {
                **{k: g[k] for k in ("pair_id", "game", "shown_a", "model_a", "model_b")},
                "score_a": first,
                "score_b": second,
                "score_x": first if in_order else second,
                "score_y": second if in_order else first,
                "expected_a": e_first,
                "expected_b": e_second,
                "expected_x": e_first if in_order else e_second,
                "expected_y": e_second if in_order else e_first,
                **{k: verdict[k] for k in GAME.names if k not in _BY_POSITION},
            }
        )
    stats = {
        "games": len(games),
        "judged_now": sum(r["judged"] for r in results),
        "from_cache": sum(g["game_key"] in done for g in games),
        "errors_now": sum(r["errors"] for r in results),
        "prompt_tokens_now": sum(r["prompt_tokens"] for r in results),
        "completion_tokens_now": sum(r["completion_tokens"] for r in results),
        "task_seconds": round(sum(r["seconds"] for r in results), 2),
    }
    return rows, stats
