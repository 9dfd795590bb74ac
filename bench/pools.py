"""Generated instruction pools for benchmarks and scale tests.

Rows mix every shape ingest reads (prompt, instruction+input, turns, messages,
ShareGPT conversations), with a set share of exact duplicates (some differing
only in case and spacing), so ingest and dedup do realistic work.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

VERBS = [
    "Explain",
    "Write",
    "Summarize",
    "Compare",
    "Describe",
    "List",
    "Translate",
    "Prove",
    "Design",
    "Debug",
]
TOPICS = [
    "the causes of the French Revolution",
    "a binary search tree in Rust",
    "photosynthesis for a child",
    "the pros and cons of remote work",
    "a haiku about autumn rain",
    "how vaccines train the immune system",
    "a SQL query for monthly revenue",
    "the Monty Hall problem",
    "a REST API for a todo app",
    "the history of the printing press",
    "gradient descent with momentum",
    "a cover letter for a nurse",
]
STYLES = [
    "in three sentences",
    "step by step",
    "with an example",
    "for an expert",
    "in a table",
    "",
]


def _instruction(rng: random.Random, i: int) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(STYLES)} (case {i})".replace(
        "  ", " "
    )


def _row(rng: random.Random, text: str, i: int) -> dict:
    shape = i % 5
    if shape == 0:
        return {"id": i, "prompt": text}
    if shape == 1:
        return {"id": i, "instruction": text, "input": "" if i % 2 else f"context {i}"}
    if shape == 2:
        return {"question_id": i, "turns": [text, "Now make it shorter."]}
    if shape == 3:
        return {"id": i, "messages": [{"role": "user", "content": text}]}
    return {
        "id": i,
        "conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": "Sure."}],
    }


def write_pool(path: Path, rows: int, duplicate_share: float = 0.1, seed: int = 0) -> Path:
    """Write `rows` JSONL rows; about `duplicate_share` of them repeat an earlier text."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    texts: list[str] = []
    with open(path, "w") as f:
        for i in range(rows):
            if texts and rng.random() < duplicate_share:
                text = rng.choice(texts)
                if rng.random() < 0.5:  # same text after normalisation
                    text = "  " + text.upper() + " "
                row = {"id": i, "prompt": text}
            else:
                text = _instruction(rng, i)
                if len(texts) < 100_000:
                    texts.append(text)
                row = _row(rng, text, i)
            f.write(json.dumps(row) + "\n")
    return path
