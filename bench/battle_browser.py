"""The battle browser (RUN/browser.html) at 10k and 100k games: how long it takes to write,
how big it is, and how long Debian's headless Chromium takes to open it, filter and search.

    python -m bench.battle_browser [--games 10000,100000] [--models 10] [--out runs/bench-browser]

For each size it writes a battle run folder as `arena battle` leaves it (records and
combined pairs as Parquet, the prompts file, answers in a real answer cache) from the
packaged recorded answers (real Arena-Hard prompts and GPT answers, 1.5-4 KB each), with
Mix subsets, clusters, judge errors and games that disagree; then `write_browser` writes
the page and Chromium opens it --repeats times in a fresh tab. Printed per size: battles,
seconds to write, MB, load ms (navigation to the first page of battles rendered, as the
page measures it, and the wall time seen from here, median of the repeats), ms to apply
a model-pair filter, ms for the first and a second text search, and a screenshot path.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
ANSWERS = REPO / "arena_models" / "rosters" / "answers"
SUBSETS = ("diverse", "diverse", "hard", "hard", "both")


def recorded() -> tuple[list[str], list[list[str]]]:
    """Real prompts and, per prompt, the recorded answers of each packaged model."""
    files = sorted(ANSWERS.glob("*.jsonl"))
    prompts, answers = [], []
    for rows in zip(*(f.read_text().splitlines() for f in files)):
        rows = [json.loads(r) for r in rows]
        prompts.append(rows[0]["messages"][0]["content"])
        answers.append([r["messages"][1]["content"]["answer"] for r in rows])
    return prompts, answers


def write_run(run: Path, games: int, models: int, seed: int = 0) -> int:
    """A battle run folder of about `games` games among `models` models; returns battles."""
    import random

    from arena_models.cache import ANSWER, AnswerCache
    from core.parquet_io import write_parquet_atomic
    from core.schemas import prompt_id
    from pipeline.battle.prompts import PLACED_PROMPTS
    from pipeline.battle.records import RECORD, combined_pairs, write_table

    rng = random.Random(seed)
    texts, recorded_answers = recorded()
    names = [f"model-{k:02d}" for k in range(models)]
    pairs = list(itertools.combinations(names, 2))
    n_prompts = max(1, round(games / (2 * len(pairs))))
    prompts = []
    for i in range(n_prompts):
        text = texts[i % len(texts)]
        if i >= len(texts):  # a later copy is another prompt: its own id
            text += f"\n\n(copy {i // len(texts)})"
        messages = [{"role": "user", "content": text}]
        prompts.append(
            {
                "prompt_id": prompt_id(messages),
                "messages": messages,
                "subset": SUBSETS[i % len(SUBSETS)],
                "cluster": i % 50,
            }
        )
    prompts.sort(key=lambda p: p["prompt_id"])
    write_parquet_atomic(
        pa.Table.from_pylist(prompts, PLACED_PROMPTS), run / "_work" / "prompts.parquet"
    )
    cache = AnswerCache(run / "_cache")
    for k, name in enumerate(names):
        rows = [
            {
                "model": name,
                "prompt_id": p["prompt_id"],
                "sampling_key": f"key-{k}",
                "answers": [recorded_answers[(i + k) % len(texts)][k % 3]],
                "finish_reasons": ["stop"],
                "prompt_tokens": 0,
                "completion_tokens": 0,
            }
            for i, p in enumerate(prompts)
        ]
        cache.model(name).append(pa.Table.from_pylist(rows, ANSWER))
    records = []
    for p in prompts:
        for a, b in pairs:
            for game in (1, 2):
                if rng.random() < 0.02:
                    records.append(_game(p, a, b, game, None, None, "no verdict in the reply"))
                    continue
                sa, sb = rng.randint(1, 10), rng.randint(1, 10)
                records.append(_game(p, a, b, game, sa, sb, None))
    table = pa.Table.from_pylist(records, RECORD)
    manifest = {
        "judge": "bench-judge",
        "judge_key": "jk",
        "models": names,
        "answer_keys": {name: f"key-{k}" for k, name in enumerate(names)},
        "cache": str((run / "_cache").resolve()),
        "config": {"combine": "total"},
    }
    write_table(table, run / "battles", manifest)
    combined = combined_pairs(table, "total")
    write_table(combined, run / "combined", manifest)
    return combined.num_rows


def _game(p: dict, a: str, b: str, game: int, sa, sb, error) -> dict:
    winner = None if error else ("model_a" if sa > sb else "model_b" if sb > sa else "tie")
    first, second = (sa, sb) if game == 1 else (sb, sa)
    explanation = (
        None
        if error
        else f"Answer {'A' if first >= second else 'B'} follows the instruction more closely"
        f" and explains its steps; the other answer {p['prompt_id'][:6]} is vaguer."
    )
    raw = (
        "I think both are fine"
        if error
        else f"Score A: {first}/10\nScore B: {second}/10\nExplanation: {explanation}"
    )
    return {
        "prompt_id": p["prompt_id"],
        "model_a": a,
        "model_b": b,
        "judge": "bench-judge",
        "game": game,
        "score_a": sa,
        "score_b": sb,
        "winner": winner,
        "error": error,
        "explanation": explanation,
        "raw": raw,
        "constraint": "regex",
        "finish_reason": "stop",
        "prompt_tokens": 700,
        "completion_tokens": 40,
        "subset": p["subset"],
        "cluster": p["cluster"],
    }


def measure(page_path: Path, repeats: int, screenshot: Path) -> dict:
    """Load, filter and search times of the page in headless Chromium (ms)."""
    from bench.headless_chromium import Chromium

    url = page_path.resolve().as_uri()
    loads, walls = [], []
    with Chromium() as browser:
        for _ in range(repeats):
            page = browser.open("about:blank")  # a fresh tab: nothing parsed yet
            started = time.perf_counter()
            page.goto(url)
            loads.append(float(page.wait_for("document.documentElement.dataset.ready")))
            walls.append((time.perf_counter() - started) * 1000)
            problems = page.problems()
        filter_ms = page.evaluate(
            """(() => { const s = document.getElementById("f-pair");
            const t = performance.now(); s.value = s.options[2].value;
            s.dispatchEvent(new Event("change")); return performance.now() - t; })()"""
        )
        searches = []
        for word in ("recursion", "python"):
            page.evaluate('document.getElementById("f-q").focus()')
            page.evaluate('document.getElementById("f-q").select()')
            page.evaluate("delete document.documentElement.dataset.searchMs")
            page.type_text(word)
            searches.append(float(page.wait_for("document.documentElement.dataset.searchMs")))
        page.screenshot(screenshot)
        shown = page.evaluate("document.getElementById('count').textContent")
    return {
        "load_ms": statistics.median(loads),
        "wall_ms": statistics.median(walls),
        "filter_ms": filter_ms,
        "search_ms": searches,
        "shown": shown,
        "problems": problems,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default="10000,100000")
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-browser"))
    args = parser.parse_args(argv)
    from pipeline.battle.browser import write_browser

    out = Path(args.out)
    print(
        f"{'games':>8} {'battles':>8} {'write s':>8} {'MB':>7} {'load ms':>8} {'wall ms':>8}"
        f" {'filter ms':>9} {'search ms (1st, 2nd)':>21}  screenshot"
    )
    for games in (int(g) for g in args.games.split(",")):
        run = out / f"games-{games}"
        battles = write_run(run, games, args.models)
        started = time.perf_counter()
        page = write_browser(run)
        written = time.perf_counter() - started
        shot = out / f"browser-{games}.png"
        m = measure(page, args.repeats, shot)
        searches = ", ".join(f"{s:.0f}" for s in m["search_ms"])
        print(
            f"{2 * battles:>8} {battles:>8} {written:>8.1f} {page.stat().st_size / 2**20:>7.1f}"
            f" {m['load_ms']:>8.0f} {m['wall_ms']:>8.0f} {m['filter_ms']:>9.0f}"
            f" {searches:>21}  {shot}"
        )
        if m["problems"]:
            print(f"         page problems: {m['problems']}")


if __name__ == "__main__":
    main()
