"""Generated instruction pools for benchmarks and scale tests.

Rows mix every shape ingest reads (prompt, instruction+input, turns, messages,
ShareGPT conversations), with a set share of exact duplicates (some differing
only in case and spacing), so ingest and dedup do realistic work. Texts are
either `templates` (720 verb x topic x style templates told apart by a serial
number: cheap, but every row is a near twin of hundreds of others) or
`fragments`: an opening and one or two word spans cut from the real prompts of
../shared/data/prompts, with a share of light edits of earlier rows (a word
dropped or added, two words swapped), so embeddings spread like a real pool's
and semantic dedup keeps most rows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from functools import lru_cache
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


OPENINGS = [
    "Explain",
    "Write about",
    "Summarize",
    "Can you help with",
    "Please describe",
    "How do I handle",
    "What is meant by",
    "Give an example of",
    "Rewrite",
    "Critique",
]
JOINS = ["and", "then", "given", "in the context of", "compared with"]
FILLERS = ["please", "briefly", "again", "carefully", "now", "exactly"]


@lru_cache(maxsize=1)
def real_prompt_texts() -> tuple[str, ...]:
    """The distinct first user turns of the real prompts in ../shared/data/prompts."""
    from pipeline.ingest.shapes import to_conversation

    texts = set()
    for path in sorted(
        (Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts").glob("*.jsonl")
    ):
        for line in path.read_text().split("\n"):
            if line.strip():
                messages = to_conversation(json.loads(line), 10**9)[0]
                texts.add(next(m["content"] for m in messages if m["role"] == "user"))
    return tuple(sorted(texts))


@lru_cache(maxsize=1)
def _real_words() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(t.split()) for t in real_prompt_texts() if len(t.split()) >= 4)


def _span(rng: random.Random, words: tuple[tuple[str, ...], ...]) -> str:
    prompt = rng.choice(words)
    n = rng.randint(4, 12)
    start = rng.randrange(max(1, len(prompt) - n + 1))
    return " ".join(prompt[start : start + n])


def _fragment_instruction(rng: random.Random) -> str:
    words = _real_words()
    text = f"{rng.choice(OPENINGS)} {_span(rng, words)}"
    if rng.random() < 0.5:
        text += f" {rng.choice(JOINS)} {_span(rng, words)}"
    return f"{text} {rng.choice(STYLES)}".strip()


def _light_edit(rng: random.Random, text: str) -> str:
    """A near twin: one word dropped, one added, or two neighbours swapped."""
    words = text.split()
    k = rng.randrange(len(words))
    edit = rng.randrange(3)
    if edit == 0 and len(words) > 4:
        del words[k]
    elif edit == 1:
        words.insert(k, rng.choice(FILLERS))
    else:
        k = min(k, len(words) - 2)
        words[k], words[k + 1] = words[k + 1], words[k]
    return " ".join(words)


def _instruction(rng: random.Random, i: int) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(STYLES)} (case {i})".replace(
        "  ", " "
    )


def _row(text: str, i: int) -> dict:
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


TEXTS = ("templates", "fragments")


def pool_texts(
    rows: int,
    duplicate_share: float = 0.1,
    seed: int = 0,
    texts_from: str = "templates",
    edit_share: float = 0.05,
) -> Iterator[tuple[str, bool]]:
    """(text, repeats an earlier one) for `rows` rows: about `duplicate_share` repeat an
    earlier text and, with `fragments`, about `edit_share` are light edits of one."""
    if texts_from not in TEXTS:
        raise ValueError(f"texts_from {texts_from!r}: expected one of {TEXTS}")
    rng = random.Random(seed)
    texts: list[str] = []
    for i in range(rows):
        draw = rng.random() if texts else 1.0
        if draw < duplicate_share:
            text = rng.choice(texts)
            if rng.random() < 0.5:  # same text after normalisation
                text = "  " + text.upper() + " "
            yield text, True
            continue
        if texts_from == "templates":
            text = _instruction(rng, i)
        elif draw < duplicate_share + edit_share:
            text = _light_edit(rng, rng.choice(texts))
        else:
            text = _fragment_instruction(rng)
        if len(texts) < 100_000:
            texts.append(text)
        yield text, False


def write_pool(path: Path, rows: int, **texts) -> Path:
    """Write `rows` JSONL rows of `pool_texts(rows, **texts)`, in every input shape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, (text, repeated) in enumerate(pool_texts(rows, **texts)):
            row = {"id": i, "prompt": text} if repeated else _row(text, i)
            f.write(json.dumps(row) + "\n")
    return path
