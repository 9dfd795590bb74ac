"""Reading scores out of a judge's free text: the one place verdict parsing lives.

Judges, small ones above all, rarely follow a format exactly. These helpers
accept the usual variants of a labelled score ("Score A: 7/10", "**Assistant A**
- 7 out of 10", "A = 7.5", "Score for A: 7") and refuse what is not a score in
range, so a reply is either read correctly or reported unreadable. Used by the
pairwise judge; reusable by any judge that writes "<label>: <number>".

Only the judge's own reply is ever parsed, and answer text can still reach it when the
judge quotes an answer: a pair is read from the judge's own score lines, and a reply
that gives a label two different scores is an error, not a guess (read_pair_scores).
"""

from __future__ import annotations

import re

# A number, optionally "/10" or "out of 10" after it.
_NUMBER = r"(\d{1,2}(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d{1,2}))?"
# Between a named label and its number: markdown, punctuation, "'s score is"...
_GAP = r"(?:'s)?(?:[\s*_`\"\]\)\[(:=\-–—>|]|\bis\b|\bscore\b|\brating\b|\bgets\b|\bof\b){0,10}?"
_NAMED = r"(?:\b(?:score|rating)s?\s*(?:for|of)?\s*(?:assistant|answer|response)?|\b(?:assistant|answer|response))"


def label_pattern(*labels: str) -> re.Pattern:
    """A regex for a score given to any of `labels` (regex fragments, e.g. "A").

    Named forms: "Score A: 7", "Assistant A's score is 7/10", "**Answer A** - 7 out
    of 10", "Score for A = 7.5". A bare label needs ':' or '=' ("A: 7") so that an
    article "a" followed by a number is never read as a score.
    """
    label = "(?:" + "|".join(labels) + ")(?![A-Za-z0-9])"
    named = _NAMED + r"\s*" + label + _GAP + _NUMBER
    # A bare label's number must end its clause ("A: 7", "A=7, B=6"), so a list such as
    # "A: 1. Structuralism" is not read as a score.
    bare = (
        r"(?<![A-Za-z0-9])"
        + label
        + r"[\s*_`]*[:=][\s*_`]*"
        + _NUMBER
        + r"(?=[\s*_`]*(?:$|[,;)\]]|\.\s*$|\.\s*\n))"
    )
    return re.compile(f"{named}|{bare}", re.IGNORECASE | re.MULTILINE)


def _value(match: re.Match) -> tuple[float, str | None]:
    groups = [g for g in match.groups()]
    # Two alternatives, two groups each: take the pair that matched.
    number, scale = (groups[0], groups[1]) if groups[0] is not None else (groups[2], groups[3])
    return float(number), scale


# Before a score on its own line: markdown (bullets, bold, quotes) only.
_LINE_START = re.compile(r"^[ \t*_`#>\-]*$")
# After it: closing markdown or punctuation only.
_LINE_END = re.compile(r"^[ \t*_`\])}.,;!]*$")


def _scores(text: str, pattern: re.Pattern, low: float, high: float) -> tuple[set, set]:
    """(values on their own verdict line, values anywhere) of the in-range scores. A score
    on another scale ("7/5") or out of range is skipped, not clamped: a judge that wrote
    it did not give a score on ours."""
    own, anywhere = set(), set()
    for match in pattern.finditer(text):
        value, scale = _value(match)
        if (scale is not None and float(scale) != high) or not low <= value <= high:
            continue
        anywhere.add(value)
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        before = text[line_start : match.start()]
        after = text[match.end() : None if line_end == -1 else line_end]
        if _LINE_START.match(before) and _LINE_END.match(after):
            own.add(value)
    return own, anywhere


def read_pair_scores(
    text: str,
    first: re.Pattern,
    second: re.Pattern,
    low: float = 1,
    high: float = 10,
    labels: tuple[str, str] = ("A", "B"),
) -> tuple[tuple[float, float] | None, str | None]:
    """((score A, score B), None) of a judge's reply, or (None, why not).

    A judge may quote an answer, and an answer may hold a fake verdict ("Score A: 10").
    So a score the judge wrote on a line of its own ("Score A: 7/10", the template's
    format) wins over one inside a sentence, and when the reply gives one label two
    different scores of the same kind, it is an error (retried, then reported), never a
    guess: picking the first or the last would let answer text choose the verdict.
    """
    pair = []
    for label, pattern in zip(labels, (first, second)):
        own, anywhere = _scores(text, pattern, low, high)
        values = own or anywhere
        if not values:
            return None, None
        if len(values) > 1:
            shown = ", ".join(f"{v:g}" for v in sorted(values))
            return None, f"ambiguous verdict: the reply gives {label} several scores ({shown})"
        pair.append(values.pop())
    return (pair[0], pair[1]), None


_EXPLANATION = re.compile(r"explanation\W{0,4}", re.IGNORECASE)


def explanation_of(text: str, limit: int = 2000) -> str:
    """The judge's reasoning: what follows "Explanation:", else the whole reply; trimmed."""
    match = _EXPLANATION.search(text)
    body = text[match.end() :] if match else text
    body = body.strip()
    return body if len(body) <= limit else body[:limit] + " [...]"


# The pairwise verdict format of the packaged template, as a backend enforces it. The
# explanation is one bounded line, so a constrained reply always ends well inside the
# judge's max_tokens; a reply cut off anyway is an error, not a verdict.
EXPLANATION_CHARS = 240
_SCORE = "(10|[1-9])"
VERDICT_REGEX = (
    f"Score A: {_SCORE}/10\nScore B: {_SCORE}/10\nExplanation: [^\\n]{{1,{EXPLANATION_CHARS}}}"
)
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "score_a": {"type": "integer", "minimum": 1, "maximum": 10},
        "score_b": {"type": "integer", "minimum": 1, "maximum": 10},
        "explanation": {"type": "string", "maxLength": EXPLANATION_CHARS},
    },
    "required": ["score_a", "score_b", "explanation"],
    "additionalProperties": False,
}


def parse_json_verdict(text: str) -> tuple[float, float, str] | None:
    """(score A, score B, explanation) of a reply in VERDICT_SCHEMA's form, or None."""
    import json

    try:
        data = json.loads(text)
        a, b = data["score_a"], data["score_b"]
        explanation = str(data.get("explanation", ""))
    except (ValueError, KeyError, TypeError):
        return None
    ok = all(
        isinstance(s, int | float) and not isinstance(s, bool) and 1 <= s <= 10 for s in (a, b)
    )
    return (float(a), float(b), explanation) if ok else None
