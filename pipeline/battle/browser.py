"""The battle browser: RUN/browser.html, one static page to read every battle of a run.

At the top the leaderboard of the run's games (Bradley-Terry with bootstrap intervals, as
`arena elo` fits them; Diverse, Hard and Mix side by side when the prompts carry their
subset). Below, each battle: the prompt (every turn), both answers side by side, then
both games, each with its scores, the judge's explanation and raw reply. Filters: model
pair, model, outcome, subset, cluster, the two games disagreeing, and text search.

Self-contained and offline: no server, no CDN, one file to open or mail. The data is
JSON inside the page (browser_page.py escapes it and renders with textContent only).
Texts are cut into chunks of about CHUNK_BYTES (prompts, answers and game texts apart,
each stored once) that the page parses only when a page of battles or a search needs
them, and battles are shown PAGE_SIZE at a time, so a run of 100k games opens in a few
seconds (`python -m bench.battle_browser` measures it).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from arena_models.cache import AnswerCache
from core.parquet_io import atomic_path, read_folder
from pipeline.battle.browser_page import render_page, script_json
from pipeline.ratings.battle_rules import BattleFilter, classify
from pipeline.ratings.groups import (
    SHARED_VALUE,
    WHOLE,
    GroupedCounts,
    count_grouped,
    ordered_values,
    rate_groups,
)
from pipeline.ratings.groups import side_by_side as table_rows
from pipeline.ratings.leaderboard import RatingOptions

BROWSER = "browser.html"
CHUNK_BYTES = 256 << 10  # JSON text per chunk: parsing one costs a few milliseconds
PAGE_SIZE = 20  # battles per page
SCORE_DIGITS = 3  # expected scores are fractions; more digits would only weigh

log = logging.getLogger(__name__)


def write_browser(run: Path, rating_options=None) -> Path:
    """RUN/browser.html from what the battle run wrote: battles/ (records, with the manifest
    naming the answer cache and each model's answer key), combined/ and _work/prompts.parquet.
    `rating_options`: pipeline.ratings.leaderboard.RatingOptions (default: arena elo's)."""
    started = time.perf_counter()
    run = Path(run)
    manifest = json.loads((run / "battles" / "_manifest.json").read_text())
    records = read_folder(run / "battles")
    combined = read_folder(run / "combined")
    prompts = pq.read_table(run / "_work" / "prompts.parquet")
    cache = AnswerCache(manifest["cache"])
    ids = prompts.column("prompt_id").to_pylist()
    answers = {}
    for model, key in manifest["answer_keys"].items():
        for pid, row in cache.lookup(model, key, ids).items():
            answers[(model, pid)] = row["answers"]
    index, chunks = browser_data(records, combined, prompts, answers, manifest, rating_options)
    path = run / BROWSER
    page = render_page(index, chunks).encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(page)
    # DEBUG: the step that wrote it names the page in its own line
    log.debug(
        "%s: %d battles, %.1f MB, %.1f s",
        path,
        len(index["battles"]["p"]),
        len(page) / 2**20,
        time.perf_counter() - started,
    )
    return path


def browser_data(
    records: pa.Table,
    combined: pa.Table,
    prompts: pa.Table,
    answers: dict[tuple[str, str], list[str]],
    manifest: dict,
    rating_options=None,
) -> tuple[dict, dict[str, list[str]]]:
    """(index, chunks) of the page: `index` holds the leaderboard and one entry per battle
    (a prompt and pair, both games) as columns of numbers; `chunks` the texts."""
    pids = prompts.column("prompt_id").to_pylist()
    at_prompt = {pid: i for i, pid in enumerate(pids)}
    names = prompts.column_names
    subsets = prompts.column("subset").to_pylist() if "subset" in names else [None] * len(pids)
    clusters = prompts.column("cluster").to_pylist() if "cluster" in names else [None] * len(pids)
    pairs = combined.to_pylist()
    models = list(manifest.get("models") or [])
    models += sorted({m for r in pairs for m in (r["model_a"], r["model_b"])} - set(models))
    at_model = {m: i for i, m in enumerate(models)}

    games = {}
    for r in records.to_pylist():
        games[(r["prompt_id"], r["model_a"], r["model_b"], r["game"])] = r
    battles = {k: [] for k in ("p", "a", "b", "o", "d", "e", "s", "w", "ia", "ib")}
    answer_at: dict[tuple[str, str], int] = {}
    answer_texts, game_texts = [], []
    outcome = {"model_a": 0, "model_b": 1, "tie": 2}
    for r in pairs:
        pid, a, b = r["prompt_id"], r["model_a"], r["model_b"]
        if pid not in at_prompt:
            continue  # a pair of a prompt the run no longer lists: nothing to show it with
        battles["p"].append(at_prompt[pid])
        battles["a"].append(at_model[a])
        battles["b"].append(at_model[b])
        battles["o"].append(outcome.get(r["winner"], 3))
        battles["d"].append(1 if r["consistent"] is False else 0)
        battles["e"].append(r["error"])
        for model, column in ((a, "ia"), (b, "ib")):
            if (model, pid) in answers and (model, pid) not in answer_at:
                answer_at[(model, pid)] = len(answer_texts)
                answer_texts.append(list(answers[(model, pid)]))
            battles[column].append(answer_at.get((model, pid), -1))
        details = []
        for game in (1, 2):
            g = games.get((pid, a, b, game), {})
            battles["s"] += [_score(g.get("score_a")), _score(g.get("score_b"))]
            battles["w"].append(outcome.get(g.get("winner"), 3))
            details.append([g.get("explanation"), g.get("raw"), g.get("error")])
        game_texts.append(details)

    # a prompt in both subsets is in each of the others, in the filter as in the ratings
    shared = SHARED_VALUE["subset"]
    present = {s for s in subsets if s is not None}
    subset_values = ordered_values(present - {shared})
    subset_values += [shared] if shared in present else []
    index = {
        "title": f"Battles judged by {manifest.get('judge', 'the judge')}",
        "meta": _meta(battles, pids, models, manifest),
        "models": models,
        "subsets": subset_values,
        "subset_labels": ["in both" if v == shared else v for v in subset_values],
        "shared_subset": subset_values.index(shared) if shared in subset_values else -1,
        "clusters": sorted({c for c in clusters if c is not None}),
        "prompts": {
            "id": pids,
            "subset": [subset_values.index(s) if s is not None else -1 for s in subsets],
            "cluster": clusters,
        },
        "battles": battles,
        "page_size": PAGE_SIZE,
    }
    index["leaderboard"], index["leaderboard_note"] = leaderboard(records, rating_options)
    prompt_texts = [
        [[m["role"], m["content"]] for m in messages]
        for messages in prompts.column("messages").to_pylist()
    ]
    chunks, starts = {}, {}
    for family, items in (("p", prompt_texts), ("a", answer_texts), ("g", game_texts)):
        chunks[family], starts[family] = pack(items)
    index["chunks"] = starts
    return index, chunks


def pack(items: list) -> tuple[list[str], list[int]]:
    """Items as chunks of escaped JSON arrays of about CHUNK_BYTES, and where each chunk
    starts (item numbers, the total last): the page finds item i by a binary search."""
    chunks, starts, current, size = [], [0], [], 0
    for n, item in enumerate(items):
        text = script_json(item)
        current.append(text)
        size += len(text)
        if size >= CHUNK_BYTES:
            chunks.append("[" + ",".join(current) + "]")
            starts.append(n + 1)
            current, size = [], 0
    if current or not chunks:
        chunks.append("[" + ",".join(current) + "]")
        starts.append(len(items))
    return chunks, starts


def leaderboard(records: pa.Table, rating_options=None) -> tuple[dict | None, str]:
    """The page's leaderboard (None when fewer than two models have a verdict) and its note."""
    options = rating_options or RatingOptions()
    placed = "subset" in records.column_names and records.column("subset").null_count < len(records)
    if placed:
        grouped = count_grouped(records, BattleFilter(), "subset")
    else:
        grouped = GroupedCounts(classify(records).counts())
    if len(grouped.total.models) < 2:
        return None, "No leaderboard: fewer than two models have a game with a verdict."
    boards = rate_groups(grouped, "subset", options)
    columns = [*boards.groups, WHOLE]
    labels = {v: v.capitalize() for v in boards.groups}
    labels[WHOLE] = "Mix" if placed else "All games"
    note = (
        f"Bradley-Terry ratings of these games (each game counts as a battle, as `arena elo`"
        f" counts them), 95% intervals from {options.bootstrap_rounds} bootstrap rounds."
    )
    if placed:
        note += " Diverse and Hard count a Mix prompt that is in both sets in each."
    board = {
        "columns": columns,
        "labels": labels,
        "rows": table_rows(boards),
        "battles": {**boards.battles, WHOLE: boards.whole_battles},
        "warnings": [*boards.whole.warnings, *boards.warnings],
        "note": note,
    }
    return board, note


def _score(value) -> float | None:
    return None if value is None else round(float(value), SCORE_DIGITS)


def _meta(battles: dict, pids: list, models: list, manifest: dict) -> str:
    n = len(battles["p"])
    errors = sum(o == 3 for o in battles["o"])
    disagree = sum(battles["d"])
    rule = (manifest.get("config") or {}).get("combine", "total")
    return (
        f"{n} battles ({2 * n} games) on {len(set(battles['p']))} of {len(pids)} prompts among"
        f" {len(models)} models; a battle's winner by rule `{rule}`; {errors} without a"
        f" verdict; in {disagree} the two games disagree."
    )
