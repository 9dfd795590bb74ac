"""Bad inputs to every `arena` command: one table of cases, each run in-process.

Every case ends in one of three ways, and never in a traceback, a hang or a silent loss:
- error: exit 2 and one line `arena CMD: error: ...` (argparse's usage lines aside),
  raised before any cluster work (no client connects to the shared cluster), or, for a
  step whose work found no usable result (`connects`), after it, with nothing recorded
  as done;
- quarantined: exit 0, bad rows in OUT/_quarantine/ with a reason, good rows kept, and
  rows in = kept + quarantined;
- handled: exit 0 with the right result, which the case's check asserts.
Cases that need a cluster share one in-process LocalCluster (DASK_SCHEDULER_ADDRESS).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobs.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
ROSTERS = REPO / "arena_models" / "rosters"
ANSWERS = ROSTERS / "answers"
HANG_SECONDS = int(os.environ.get("ARENA_CASE_TIMEOUT", "60"))  # a case past it hangs


@dataclass
class Case:
    id: str
    argv: str  # placeholders: {tmp} the case's folder, {pool} an ingested pool, {data}, {answers}
    expect: str  # error | quarantined | handled
    files: dict = field(default_factory=dict)  # name -> str | bytes
    match: str = ""  # error: text the message holds
    cluster: bool = True  # False: no DASK_SCHEDULER_ADDRESS (the cluster flags' own cases)
    rows: tuple[int, int] | None = None  # quarantined: (kept, quarantined)
    check: object = None  # handled/quarantined: check(tmp, stdout)
    env: dict = field(default_factory=dict)  # environment variables; placeholders as in argv
    # error: raised once the cluster work found no usable result (not before connecting)
    connects: bool = False


def jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


GOOD = jsonl({"prompt": "What is the capital of France?"}, {"prompt": "Name three primes."})
ROSTER_OK = (
    "models:\n"
    f"  - {{name: a, backend: recorded, path: {ANSWERS}/gpt-4-0314.jsonl, model: gpt-4-0314}}\n"
    f"  - {{name: b, backend: recorded, path: {ANSWERS}/gpt-4-0613.jsonl, model: gpt-4-0613}}\n"
)
BATTLES = (
    "model_a,model_b,winner\n" + "a,b,model_a\nb,c,model_b\na,c,tie\nc,a,model_a\nb,a,model_b\n"
)
ALWAYS_WINS = "model_a,model_b,winner\n" + "a,b,model_a\n" * 5 + "b,c,model_a\nc,b,model_a\n"
FW = "target: smollm2-greedy\n"
TIMED = [
    {
        "model_a": "ab"[d % 2],
        "model_b": "c",
        "winner": "model_a",
        "tstamp": f"2024-01-0{d}T12:00:00",
    }
    for d in range(1, 7)
]
PAIR = {
    "pair_id": "p1",
    "prompt": "Say hi",
    "model_x": "m1",
    "answer_x": "hi",
    "model_y": "m2",
    "answer_y": "hello",
    "crowd_votes": {"x": 2, "y": 1, "tie": 0},
}


def llmfao_head(rows: int) -> str:
    with open(DATA / "battles" / "llmfao_crowd_comparisons.csv") as f:
        return "".join(line for _, line in zip(range(rows + 1), f))


def leaderboard(tmp: Path) -> list[dict]:
    with open(tmp / "out" / "leaderboard.csv") as f:
        return list(csv.DictReader(f))


def finite_board(tmp: Path, stdout: str) -> None:
    board = leaderboard(tmp)
    assert board
    for row in board:
        assert math.isfinite(float(row["rating"])), row


def anchored_at(model: str, value: float):
    def check(tmp: Path, stdout: str) -> None:
        finite_board(tmp, stdout)
        [row] = [r for r in leaderboard(tmp) if r["model"] == model]
        assert float(row["rating"]) == pytest.approx(value)

    return check


def texts_are(*expected: str):
    def check(tmp: Path, stdout: str) -> None:
        import pandas as pd

        frame = pd.read_parquet(tmp / "out")
        got = sorted(m[0]["content"] for m in frame.messages)
        assert got == sorted(expected)

    return check


def exact_dedup_kept(kept: int):
    def check(tmp: Path, stdout: str) -> None:
        manifest = json.loads((tmp / "out" / "_manifest.json").read_text())
        assert (manifest["rows_in"], manifest["rows_out"]) == (4, kept)

    return check


def semantic_dedup_accounts_for_every_row(tmp: Path, stdout: str) -> None:
    import pandas as pd

    manifest = json.loads((tmp / "out" / "_manifest.json").read_text())
    kept, dropped = pd.read_parquet(tmp / "out"), pd.read_parquet(tmp / "out" / "_dropped")
    assert manifest["rows_in"] == len(kept) + len(dropped) and "embedding" in kept.columns
    assert "semantic dedup:" in stdout


# A user's own folder given as --out: every command refuses it, --overwrite or not, and
# leaves it byte for byte (names the project writes, report.md and part-*, included).
USER_FILES = {
    "out/notes.txt": "my notes\n",
    "out/report.md": "# my report\n",
    "out/part-00000.parquet": b"PAR1 my own bytes",
    "out/sub/data.csv": "a,b\n1,2\n",
}


def users_files_intact(tmp: Path, stdout: str) -> None:
    out = tmp / "out"
    assert {str(p.relative_to(tmp)) for p in out.rglob("*")} == {*USER_FILES, "out/sub"}
    for name, content in USER_FILES.items():
        assert (tmp / name).read_bytes() == (
            content if isinstance(content, bytes) else content.encode()
        ), name


def users_folder(command: str, argv: str, inputs: dict | None = None) -> Case:
    return Case(
        f"{command}-out-is-a-users-folder",
        argv,
        "error",
        {**(inputs or {}), **USER_FILES},
        "did not write (notes.txt, part-00000.parquet",
        check=users_files_intact,
    )


def own_names_folder(command: str, argv: str, name: str, inputs: dict | None = None) -> Case:
    """A user's folder holding only a file named like one the command writes: the name is
    the project's only in a folder a job of it claimed, so this one is refused and kept."""
    mine = f"my own {name}\n"

    def kept(tmp: Path, stdout: str) -> None:
        assert sorted(p.name for p in (tmp / "out").iterdir()) == [name]
        assert (tmp / "out" / name).read_text() == mine

    return Case(
        f"{command}-out-holds-a-users-{name}",
        argv,
        "error",
        {**(inputs or {}), f"out/{name}": mine},
        f"did not write ({name})",
        check=kept,
    )


def parquet_of(rows: list[dict], **types):
    """A Parquet file of `rows` for a case's files (column types by name, e.g. a timestamp)."""

    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows)
        for name, kind in types.items():
            column = table.column(name).cast(pa.type_for_alias(kind))
            table = table.set_column(table.schema.get_field_index(name), name, column)
        pq.write_table(table, path)

    return write


def compressed(text: str, codec: str):
    """A file's content: `text` compressed with gzip or zstd (Arrow's codecs)."""

    def write(path: Path) -> None:
        import pyarrow as pa

        with pa.output_stream(str(path), compression=codec) as f:
            f.write(text.encode())

    return write


def undated(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "tstamp"}


def texts_battles(n: int = 30) -> list[dict]:
    """Battles with answer texts that span lines, markdown included, one answer missing."""
    rows = []
    for i in range(n):
        a, b = ("a", "b") if i % 3 else ("b", "c")
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "winner": ("model_a", "model_b", "tie")[i % 3],
                "answer_a": None if i == 0 else "# Title\n" + "- item\n" * (i % 4) + "x" * i,
                "answer_b": f'He said "hi",\nthen **left** {i}',
            }
        )
    return rows


def csv_of(rows: list[dict]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def models_are(*names: str):
    def check(tmp: Path, stdout: str) -> None:
        finite_board(tmp, stdout)
        assert sorted(r["model"] for r in leaderboard(tmp)) == sorted(names)

    return check


def counted(n: int, filtered: int = 0):
    def check(tmp: Path, stdout: str) -> None:
        summary = json.loads((tmp / "out" / "summary.json").read_text())
        assert (summary["battles"], summary["filtered"]) == (n, filtered), summary

    return check


def style_rated(tmp: Path, stdout: str) -> None:
    finite_board(tmp, stdout)
    for row in leaderboard(tmp):
        assert math.isfinite(float(row["rating_style_controlled"])), row


C = Case
CASES = [
    # ---- config values of the wrong type or for another mode ------------------------
    C(
        "battle-opponents-without-target-schedule",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a --opponents b",
        "error",
        {"r.yaml": ROSTER_OK},
        "--opponents applies to --schedule target, not all-pairs",
    ),
    C(
        "battle-anchor-without-anchor-schedule",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a --anchor b",
        "error",
        {"r.yaml": ROSTER_OK},
        "--anchor applies to --schedule anchor",
    ),
    C(
        "battle-target-with-all-pairs",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a --target b",
        "error",
        {"r.yaml": ROSTER_OK},
        "--target applies to --schedule target or sampled",
    ),
    C(
        "battle-target-among-its-opponents",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a --schedule target --target a --opponents a,b",
        "error",
        {"r.yaml": ROSTER_OK},
        "a is the target; it cannot be its own opponent",
    ),
    C(
        "flywheel-slices-fraction",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "slices: 2.5\n"},
        "slices must be a whole number, got 2.5",
    ),
    C(
        "flywheel-slices-quoted",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "slices: '3'\n"},
        "slices must be a whole number, got '3'",
    ),
    C(
        "flywheel-jsonl-string",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "jsonl: 'no'\n"},
        "jsonl must be true or false, got 'no'",
    ),
    C(
        "flywheel-seed-bool",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "seed: yes\n"},
        "seed must be a whole number, got True",
    ),
    C(
        "flywheel-gap-list-holds-text",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "sft_gap: [2, x]\n"},
        "sft_gap must be a number or a list of them",
    ),
    C(
        "flywheel-bootstrap-negative",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "bootstrap: -5\n"},
        "bootstrap must be 0 or more",
    ),
    C(
        "flywheel-shard-rows-zero",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "shard_rows: 0\n"},
        "shard_rows at least 1",
    ),
    C(
        "flywheel-target-in-opponents",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "opponents: [smollm2-greedy, gpt-4-0314]\n"},
        "smollm2-greedy is the target",
    ),
    C(
        "flywheel-train-key-misspelt",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "train: {learning_rat: 0.1}\n"},
        "unknown key 'learning_rat' (did you mean 'learning_rate'?)",
    ),
    C(
        "flywheel-train-by-kind-misspelt",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "train_by_kind: {dpo: {max_step: 3}}\n"},
        "unknown key 'max_step' (did you mean 'max_steps'?)",
    ),
    C(
        "flywheel-train-steps-quoted",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "train: {max_steps: '3'}\n"},
        "max_steps must be a whole number, got '3'",
    ),
    C(
        "flywheel-train-rate-text",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "train_by_kind: {sft: {learning_rate: fast}}\n"},
        "learning_rate must be a number or null, got 'fast'",
    ),
    C(
        "flywheel-pool-number",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "pool: 7\n"},
        "pool must be text or null, got 7",
    ),
    C(
        "flywheel-cache-list",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "cache: [a, b]\n"},
        "cache must be text or null",
    ),
    C(
        "flywheel-phases-number",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "phases: 3\n"},
        "phases must be text or a list of them, got 3",
    ),
    C(
        "flywheel-stages-renamed",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "stages: [sft]\n"},
        "`stages` is now `phases`",
    ),
    C(
        "build-evalset-recipe-clusters-quoted",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusters: '4'\n"},
        "clusters must be a whole number, got '4'",
    ),
    C(
        "build-evalset-recipe-clusters-fraction",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusters: 4.5\n"},
        "clusters must be a whole number, got 4.5",
    ),
    C(
        "build-evalset-recipe-seed-text",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "seed: abc\n"},
        "seed must be a whole number, got 'abc'",
    ),
    C(
        "build-evalset-recipe-embed-model-number",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "embed_model: 5\n"},
        "embed_model must be text",
    ),
    # ---- the environment: places that cannot be written, files that are not text ----
    C(
        "ingest-out-on-a-read-only-place",
        "ingest {tmp}/p.jsonl --out /proc/arena-case",
        "error",
        {"p.jsonl": GOOD},
        "cannot write in /proc",
    ),
    C(
        "elo-out-not-permitted",
        "elo {tmp}/b.csv --out /sys/arena-case",
        "error",
        {"b.csv": BATTLES},
        "cannot write in /sys",
    ),
    C(
        "battle-out-on-a-read-only-place",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out /proc/arena-case --judge a",
        "error",
        {"r.yaml": ROSTER_OK},
        "cannot write in /proc",
    ),
    C(
        "ingest-arena-cache-is-a-file",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": GOOD, "f": "x"},
        "ARENA_CACHE",
        env={"ARENA_CACHE": "{tmp}/f/cache"},
    ),
    C(
        "judge-eval-cache-on-a-read-only-place",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "ARENA_CACHE=/proc/arena-cache: cannot write in /proc",
        env={"ARENA_CACHE": "/proc/arena-cache"},
    ),
    C(
        "judge-eval-template-not-utf8",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-template {tmp}/t.txt",
        "error",
        {
            "p.jsonl": jsonl(PAIR),
            "t.txt": "caf\xe9 {question} {answer_a} {answer_b}".encode("latin-1"),
        },
        "t.txt: not UTF-8 text (byte 0xe9",
    ),
    C(
        "battle-roster-not-utf8",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {
            "r.yaml": "models:\n  - {name: caf\xe9, backend: recorded, path: x.jsonl}\n".encode(
                "latin-1"
            )
        },
        "r.yaml: not UTF-8 text",
    ),
    C(
        "build-evalset-recipe-not-utf8",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusters: 2 # caf\xe9\n".encode("latin-1")},
        "r.yaml: not UTF-8 text",
    ),
    C(
        "flywheel-config-not-utf8",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": "target: caf\xe9\n".encode("latin-1")},
        "f.yaml: not UTF-8 text",
    ),
    C(
        "battle-hub-model-not-cached-offline",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge b",
        "error",
        {
            "r.yaml": ROSTER_OK
            + "  - {name: c, backend: transformers, path: someorg/no-such-model}\n"
        },
        "c: path someorg/no-such-model is neither a folder nor a model in the local Hugging Face",
        env={"HF_HUB_OFFLINE": "1"},
    ),
    C(
        "battle-recorded-answers-not-utf8",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {
            "r.yaml": "models:\n  - {name: a, backend: recorded, path: x.jsonl}\n"
            f"  - {{name: b, backend: recorded, path: {ANSWERS}/gpt-4-0613.jsonl, model: gpt-4-0613}}\n",
            "x.jsonl": '{"messages": [{"role": "user", "content": "caf\xe9"}]}\n'.encode("latin-1"),
        },
        "x.jsonl:1: not a recorded answer row",
    ),
    # ---- every command: --out a folder of the user's own files ---------------------
    users_folder("ingest", "ingest {tmp}/p.jsonl --out {tmp}/out --overwrite", {"p.jsonl": GOOD}),
    users_folder("dedup", "dedup --exact {pool} --out {tmp}/out --overwrite"),
    users_folder("near-dedup", "dedup --near {pool} --out {tmp}/out --overwrite"),
    users_folder("semantic-dedup", "dedup --semantic {pool} --out {tmp}/out --overwrite"),
    users_folder(
        "build-evalset",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --overwrite",
        {"p.jsonl": GOOD},
    ),
    users_folder(
        "decontaminate",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out --overwrite",
        {"b.jsonl": GOOD},
    ),
    users_folder(
        "battle",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        {"r.yaml": ROSTER_OK},
    ),
    users_folder(
        "judge-eval", "judge-eval {tmp}/p.jsonl --out {tmp}/out", {"p.jsonl": jsonl(PAIR)}
    ),
    users_folder("elo", "elo {tmp}/b.csv --out {tmp}/out", {"b.csv": BATTLES}),
    users_folder(
        "train",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out --overwrite",
        {"d/part-00000.parquet": "SFT_SHARD"},
    ),
    users_folder(
        "flywheel", "flywheel --config {tmp}/f.yaml --out {tmp}/out --overwrite", {"f.yaml": FW}
    ),
    users_folder("run", "run --out {tmp}/out --overwrite"),
    own_names_folder(
        "elo", "elo {tmp}/b.csv --out {tmp}/out", "leaderboard.csv", {"b.csv": BATTLES}
    ),
    own_names_folder(
        "battle",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "summary.md",
        {"r.yaml": ROSTER_OK},
    ),
    own_names_folder(
        "judge-eval",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "report.md",
        {"p.jsonl": jsonl(PAIR)},
    ),
    own_names_folder(
        "build-evalset",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --overwrite",
        "mix",
        {"p.jsonl": GOOD},
    ),
    own_names_folder(
        "flywheel",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out --overwrite",
        "flywheel.json",
        {"f.yaml": FW},
    ),
    own_names_folder("run", "run --out {tmp}/out --overwrite", "report.md"),
    # ---- ingest: paths -------------------------------------------------------------
    C(
        "ingest-folder-of-compressed-jsonl",
        "ingest {tmp}/d --out {tmp}/out",
        "handled",
        {
            "d/a.jsonl.gz": compressed(GOOD, "gzip"),
            "d/b.jsonl.zst": compressed(jsonl({"prompt": "zstd"}), "zstd"),
            "d/c.json.gz": compressed(json.dumps([{"prompt": "array"}]), "gzip"),
            "d/README.md": "not a pool file\n",
        },
        check=texts_are("What is the capital of France?", "Name three primes.", "zstd", "array"),
    ),
    C(
        "ingest-compressed-file-given",
        "ingest {tmp}/a.ndjson.zst --out {tmp}/out",
        "handled",
        {"a.ndjson.zst": compressed(GOOD + "{broken\n", "zstd")},
        rows=(2, 1),
    ),
    C(
        "ingest-corrupt-gzip",
        "ingest {tmp}/a.jsonl.gz --out {tmp}/out",
        "error",
        {"a.jsonl.gz": b"not gzip at all"},
        "not readable as gzip",
    ),
    C(
        "ingest-gzip-of-parquet",
        "ingest {tmp}/a.parquet.gz --out {tmp}/out",
        "error",
        {"a.parquet.gz": compressed("x", "gzip")},
        "unknown format .parquet.gz",
    ),
    C("ingest-missing-file", "ingest {tmp}/nope.jsonl --out {tmp}/out", "error", match="no such"),
    C("ingest-empty-dir", "ingest {tmp}/d --out {tmp}/out", "error", {"d/.keep": ""}, "no .jsonl"),
    C(
        "ingest-dir-of-txt",
        "ingest {tmp}/d --out {tmp}/out",
        "error",
        {"d/a.txt": "hi"},
        "no .jsonl",
    ),
    C(
        "ingest-csv",
        "ingest {tmp}/p.csv --out {tmp}/out",
        "error",
        {"p.csv": "question\nhi\n"},
        "format",
    ),
    C("ingest-no-suffix", "ingest {tmp}/pool --out {tmp}/out", "error", {"pool": GOOD}, "format"),
    C("ingest-txt", "ingest {tmp}/p.txt --out {tmp}/out", "error", {"p.txt": GOOD}, "format"),
    C(
        "ingest-binary-parquet",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "error",
        {"p.parquet": b"\x00\xff garbage \x89PNG"},
        "Parquet",
    ),
    C(
        "ingest-empty-parquet",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "error",
        {"p.parquet": b""},
        "Parquet",
    ),
    # A .json file that is not an array is read as JSONL: its lines are rows.
    C(
        "ingest-json-broken-object",
        "ingest {tmp}/p.json --out {tmp}/out",
        "quarantined",
        {"p.json": '{"prompt": "x"'},
        rows=(0, 1),
    ),
    C(
        "ingest-json-one-object",
        "ingest {tmp}/p.json --out {tmp}/out",
        "handled",
        {"p.json": '{"prompt": "only row"}'},
        rows=(1, 0),
        check=texts_are("only row"),
    ),
    C(
        "ingest-json-array-broken",
        "ingest {tmp}/p.json --out {tmp}/out",
        "error",
        {"p.json": '[{"prompt": "x"}, '},
        "malformed",
    ),
    C(
        "ingest-json-array-latin1",
        "ingest {tmp}/p.json --out {tmp}/out",
        "error",
        {"p.json": '[{"prompt": "caf\xe9"}]'.encode("latin-1")},
        "UTF-8",
    ),
    C(
        "ingest-max-chars-0",
        "ingest {tmp}/p.jsonl --out {tmp}/out --max-chars 0",
        "error",
        {"p.jsonl": GOOD},
        "positive",
    ),
    C(
        "ingest-chunk-mb-neg",
        "ingest {tmp}/p.jsonl --out {tmp}/out --chunk-mb -1",
        "error",
        {"p.jsonl": GOOD},
        "positive",
    ),
    C(
        "ingest-max-chars-text",
        "ingest {tmp}/p.jsonl --out {tmp}/out --max-chars lots",
        "error",
        {"p.jsonl": GOOD},
        "invalid int",
    ),
    C(
        "ingest-out-is-file",
        "ingest {tmp}/p.jsonl --out {tmp}/p.jsonl",
        "error",
        {"p.jsonl": GOOD},
        "--out",
    ),
    C(
        "ingest-out-is-other-stage",
        "ingest {tmp}/p.jsonl --out {pool}",
        "error",
        {"p.jsonl": GOOD},
        "overwrite",
    ),
    C(
        "ingest-bad-resources",
        "ingest {tmp}/p.jsonl --out {tmp}/out --worker-resources GPU",
        "error",
        {"p.jsonl": GOOD},
        "NAME=AMOUNT",
    ),
    C("ingest-no-out", "ingest {tmp}/p.jsonl", "error", {"p.jsonl": GOOD}, "--out"),
    # ---- ingest: rows ------------------------------------------------------------------
    C(
        "ingest-empty-jsonl",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": ""},
        rows=(0, 0),
    ),
    C(
        "ingest-blank-lines",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": "\n\n" + GOOD + "\n  \n"},
        rows=(2, 0),
    ),
    C(
        "ingest-bom-first-line",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": "\ufeff" + GOOD},
        rows=(2, 0),
        check=texts_are("What is the capital of France?", "Name three primes."),
    ),
    C(
        "ingest-bom-json-array",
        "ingest {tmp}/p.json --out {tmp}/out",
        "handled",
        {"p.json": "\ufeff" + json.dumps([{"prompt": "hello there"}])},
        rows=(1, 0),
        check=texts_are("hello there"),
    ),
    C(
        "ingest-content-parts",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": "Explain "},
                                {"type": "text", "text": "gravity."},
                            ],
                        }
                    ]
                }
            )
        },
        rows=(1, 0),
        check=texts_are("Explain gravity."),
    ),
    C(
        "ingest-content-parts-image",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {
            "p.jsonl": GOOD
            + jsonl(
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
                            ],
                        }
                    ]
                }
            )
        },
        rows=(2, 1),
    ),
    C(
        "ingest-stage-folder-as-pool",
        "ingest {pool} --out {tmp}/out",
        "handled",
        check=lambda tmp, out: _same_rows_as_pool(tmp),
    ),
    C(
        "ingest-hidden-files-skipped",
        "ingest {tmp}/d --out {tmp}/out",
        "handled",
        {
            "d/p.jsonl": GOOD,
            "d/.hidden.jsonl": "garbage\n",
            "d/_notes.json": '{"a": 1}',
            "d/_sub/x.jsonl": "junk\n",
        },
        rows=(2, 0),
        check=texts_are("What is the capital of France?", "Name three primes."),
    ),
    C(
        "ingest-malformed-json-line",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + '{"prompt": "unclosed\n'},
        rows=(2, 1),
    ),
    C(
        "ingest-binary-garbage-jsonl",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD.encode() + b"\x00\xff\xfe\x89\x01garbage\n"},
        rows=(2, 1),
    ),
    C(
        "ingest-latin1-line",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD.encode() + '{"prompt": "caf\xe9"}\n'.encode("latin-1")},
        rows=(2, 1),
    ),
    C(
        "ingest-json-not-object",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl([1, 2], "42", '"a string"', "null")},
        rows=(2, 4),
    ),
    C(
        "ingest-null-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"prompt": None})},
        rows=(2, 1),
    ),
    C(
        "ingest-empty-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"prompt": ""}, {"prompt": "   \n"})},
        rows=(2, 2),
    ),
    C(
        "ingest-huge-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out --max-chars 1000",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"prompt": "x" * 5000}, {"prompt": "y" * 1001})},
        rows=(2, 2),
    ),
    C(
        "ingest-number-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"prompt": 7}, {"prompt": ["a"]}, {"prompt": {"t": 1}})},
        rows=(2, 3),
    ),
    C(
        "ingest-no-text-field",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"question": "hi"}, {})},
        rows=(2, 2),
    ),
    C(
        "ingest-messages-not-list",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"messages": "hi"}, {"messages": []}, {"messages": [5]})},
        rows=(2, 3),
    ),
    C(
        "ingest-unknown-role",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"messages": [{"role": "wizard", "content": "x"}]})},
        rows=(2, 1),
    ),
    C(
        "ingest-no-user-turn",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"messages": [{"role": "assistant", "content": "x"}]})},
        rows=(2, 1),
    ),
    C(
        "ingest-content-number",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {
            "p.jsonl": GOOD
            + jsonl(
                {"messages": [{"role": "user", "content": 3}]},
                {"messages": [{"role": "user", "content": None}]},
            )
        },
        rows=(2, 2),
    ),
    C(
        "ingest-sharegpt-bad-from",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"conversations": [{"from": "alien", "value": "x"}]})},
        rows=(2, 1),
    ),
    C(
        "ingest-turns-bad",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"turns": []}, {"turns": ["ok", 3]}, {"turns": "x"})},
        rows=(2, 3),
    ),
    C(
        "ingest-instruction-input-number",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + jsonl({"instruction": "Add", "input": 5})},
        rows=(2, 1),
    ),
    C(
        "ingest-lone-surrogate",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {"p.jsonl": GOOD + '{"prompt": "bad \\ud800 half"}\n'},
        rows=(2, 1),
    ),
    C(
        "ingest-no-final-newline",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": GOOD + '{"prompt": "last"}'},
        rows=(3, 0),
        check=texts_are("What is the capital of France?", "Name three primes.", "last"),
    ),
    C(
        "ingest-crlf",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": GOOD.replace("\n", "\r\n")},
        rows=(2, 0),
        check=texts_are("What is the capital of France?", "Name three primes."),
    ),
    C(
        "ingest-json-array-mixed",
        "ingest {tmp}/p.json --out {tmp}/out",
        "quarantined",
        {"p.json": json.dumps([{"prompt": "ok"}, 3, None, {"prompt": ""}])},
        rows=(1, 3),
    ),
    C(
        "ingest-json-array-empty",
        "ingest {tmp}/p.json --out {tmp}/out",
        "quarantined",
        {"p.json": "[]"},
        rows=(0, 0),
    ),
    # ---- dedup ---------------------------------------------------------------------
    C(
        "dedup-buckets-neg",
        "dedup --exact {pool} --out {tmp}/out --buckets -1",
        "error",
        match="--buckets",
    ),
    C("dedup-missing-pool", "dedup --exact {tmp}/nope --out {tmp}/out", "error", match="Parquet"),
    C(
        "dedup-pool-is-jsonl",
        "dedup --exact {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": GOOD},
        "Parquet",
    ),
    C(
        "dedup-empty-dir",
        "dedup --exact {tmp}/d --out {tmp}/out",
        "error",
        {"d/.keep": ""},
        "part-",
    ),
    C(
        "dedup-garbage-part",
        "dedup --exact {tmp}/d --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": b"not parquet"},
        "Parquet",
    ),
    C(
        "dedup-wrong-columns",
        "dedup --exact {tmp}/d --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": "WRONG_COLUMNS"},
        "messages",
    ),
    C(
        "dedup-near-threshold-0",
        "dedup --near {pool} --out {tmp}/out --threshold 0",
        "error",
        match="--threshold",
    ),
    C(
        "dedup-near-threshold-2",
        "dedup --near {pool} --out {tmp}/out --threshold 1.5",
        "error",
        match="--threshold",
    ),
    C(
        "dedup-near-threshold-nan",
        "dedup --near {pool} --out {tmp}/out --threshold nan",
        "error",
        match="--threshold",
    ),
    C(
        "dedup-near-num-perm-0",
        "dedup --near {pool} --out {tmp}/out --num-perm 0",
        "error",
        match="--num-perm",
    ),
    C(
        "dedup-near-ngram-0",
        "dedup --near {pool} --out {tmp}/out --ngram 0",
        "error",
        match="--ngram",
    ),
    C(
        "dedup-exact-with-ngram",
        "dedup --exact {pool} --out {tmp}/out --ngram 5",
        "error",
        match="--near",
    ),
    C(
        "dedup-near-with-buckets",
        "dedup --near {pool} --out {tmp}/out --buckets 4",
        "error",
        match="--buckets",
    ),
    C(
        "dedup-exact-with-threshold",
        "dedup --exact {pool} --out {tmp}/out --threshold 0.5",
        "error",
        match="--near",
    ),
    C(
        "dedup-exact-and-near",
        "dedup --exact --near {pool} --out {tmp}/out",
        "error",
        match="not allowed",
    ),
    C("dedup-out-is-file", "dedup --exact {pool} --out {tmp}/f", "error", {"f": "x"}, "--out"),
    C("dedup-out-is-pool", "dedup --exact {pool} --out {pool}", "error", match="--out"),
    C(
        "dedup-exact-runs",
        "dedup --exact {pool} --out {tmp}/out",
        "handled",
        check=exact_dedup_kept(3),
    ),
    C(
        "dedup-semantic-threshold-2",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe demo --semantic-threshold 2",
        "error",
        {"p.jsonl": GOOD},
        "semantic_threshold",
    ),
    C(
        "dedup-semantic-threshold-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out"
        " --recipe demo --semantic-threshold -0.5",
        "error",
        {"p.jsonl": GOOD},
        "semantic_threshold",
    ),
    C(
        "dedup-semantic-margin-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out"
        " --recipe demo --semantic-threshold 0.9 --semantic-margin -1",
        "error",
        {"p.jsonl": GOOD},
        "semantic_margin",
    ),
    C(
        "dedup-semantic-search-bad",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe demo --semantic-search fuzzy",
        "error",
        {"p.jsonl": GOOD},
        "semantic_search",
    ),
    C(
        "dedup-semantic-nprobe-0",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe demo --semantic-nprobe 0",
        "error",
        {"p.jsonl": GOOD},
        "semantic_nprobe",
    ),
    # ---- build-evalset -------------------------------------------------------------
    C(
        "evalset-broken-yaml",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusters: [1, 2\nseed: {"},
        "YAML",
    ),
    C(
        "evalset-yaml-list",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "- a\n- b\n"},
        "recipe",
    ),
    C(
        "evalset-unknown-key",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusterz: 3\n"},
        "recipe: unknown key 'clusterz' (did you mean 'clusters'?)",
    ),
    C(
        "evalset-wrong-type-key",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "clusters: many\n"},
        "clusters",
    ),
    C(
        "evalset-missing-recipe",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe nope",
        "error",
        {"p.jsonl": GOOD},
        "no such recipe",
    ),
    C(
        "evalset-difficulty-mode-vibes",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "difficulty_mode: vibes\n"},
        "difficulty_mode",
    ),
    C(
        "evalset-difficulty-mode-flag",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --difficulty-mode vibes",
        "error",
        {"p.jsonl": GOOD},
        "invalid choice",
    ),
    C(
        "evalset-clusters-0",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --clusters 0",
        "error",
        {"p.jsonl": GOOD},
        "clusters",
    ),
    C(
        "evalset-clusters-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --clusters -3",
        "error",
        {"p.jsonl": GOOD},
        "clusters",
    ),
    C(
        "evalset-diverse-0",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --diverse-per-cluster 0",
        "error",
        {"p.jsonl": GOOD},
        "diverse_per_cluster",
    ),
    C(
        "evalset-hard-top-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --hard-top -1",
        "error",
        {"p.jsonl": GOOD},
        "hard_top",
    ),
    C(
        "evalset-hard-candidates-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --hard-candidates-per-cluster -2",
        "error",
        {"p.jsonl": GOOD},
        "hard_candidates",
    ),
    C(
        "evalset-difficulty-retries-neg",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --difficulty-retries -1",
        "error",
        {"p.jsonl": GOOD},
        "difficulty_retries",
    ),
    C(
        "evalset-embed-dtype-bad",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --embed-dtype float7",
        "error",
        {"p.jsonl": GOOD},
        "float7",
    ),
    C(
        "evalset-unknown-judge",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --difficulty-judge nobody",
        "error",
        {"p.jsonl": GOOD},
        "nobody",
    ),
    C(
        "evalset-missing-judge-roster",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --judge-roster {tmp}/none.yaml",
        "error",
        {"p.jsonl": GOOD},
        "none.yaml",
    ),
    C(
        "evalset-missing-pool",
        "build-evalset --pool {tmp}/nope.jsonl --out {tmp}/out",
        "error",
        match="no such file",
    ),
    C(
        "evalset-pool-csv",
        "build-evalset --pool {tmp}/p.csv --out {tmp}/out",
        "error",
        {"p.csv": "prompt\nhi\n"},
        "format",
    ),
    C(
        "evalset-out-is-file",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/p.jsonl",
        "error",
        {"p.jsonl": GOOD},
        "--out",
    ),
    C(
        "evalset-max-chars-0",
        "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out --max-chars 0",
        "error",
        {"p.jsonl": GOOD},
        "positive",
    ),
    # ---- decontaminate -------------------------------------------------------------
    C(
        "decon-top-k-neg",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out --top-k -1",
        "error",
        {"b.jsonl": GOOD},
        "--top-k",
    ),
    C(
        "decon-threshold-2",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out --threshold 2",
        "error",
        {"b.jsonl": GOOD},
        "--threshold",
    ),
    C(
        "decon-missing-train",
        "decontaminate --train {tmp}/nope --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": GOOD},
        "Parquet",
    ),
    C(
        "decon-train-is-jsonl",
        "decontaminate --train {tmp}/b.jsonl --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": GOOD},
        "Parquet",
    ),
    C(
        "decon-missing-against",
        "decontaminate --train {pool} --against {tmp}/nope.jsonl --out {tmp}/out",
        "error",
        match="no such file",
    ),
    C(
        "decon-against-empty",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": ""},
        "no conversations",
    ),
    C(
        "decon-against-garbage",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": "junk\n{]\n"},
        "no conversations",
    ),
    C(
        "decon-against-broken-array",
        "decontaminate --train {pool} --against {tmp}/b.json --out {tmp}/out",
        "error",
        {"b.json": '[{"prompt": "x"}, '},
        "malformed",
    ),
    C(
        "decon-embed-dtype-bad",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out --embed-dtype int3",
        "error",
        {"b.jsonl": GOOD},
        "int3",
    ),
    C(
        "decon-out-is-train",
        "decontaminate --train {pool} --against {tmp}/b.jsonl --out {pool}",
        "error",
        {"b.jsonl": GOOD},
        "--out",
    ),
    # ---- battle --------------------------------------------------------------------
    C(
        "battle-missing-roster",
        "battle --roster {tmp}/none.yaml --evalset {pool} --out {tmp}/out --judge j",
        "error",
        match="none.yaml",
    ),
    C(
        "battle-roster-broken-yaml",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": "models: [\n  - {name: a"},
        "YAML",
    ),
    C(
        "battle-roster-not-mapping",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": "- a\n"},
        "r.yaml",
    ),
    C(
        "battle-roster-unknown-backend",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": "models:\n  - {name: a, backend: telepathy, path: x}\n"},
        "telepathy",
    ),
    C(
        "battle-roster-duplicate-names",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": ROSTER_OK + ROSTER_OK.split("\n", 1)[1]},
        "duplicate",
    ),
    C(
        "battle-roster-missing-path",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": "models:\n  - {name: a, backend: recorded}\n  - {name: b, backend: recorded}\n"},
        "path",
    ),
    C(
        "battle-roster-answers-missing",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": ROSTER_OK.replace("gpt-4-0613.jsonl", "nobody.jsonl")},
        "nobody.jsonl",
    ),
    C(
        "battle-roster-model-not-in-answers",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": ROSTER_OK.replace("model: gpt-4-0613", "model: gpt-9")},
        "gpt-9",
    ),
    C(
        "battle-roster-no-models",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r.yaml": "models: []\n"},
        "r.yaml",
    ),
    C(
        "battle-unknown-judge",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge nobody",
        "error",
        {"r.yaml": ROSTER_OK},
        "nobody",
    ),
    C(
        "battle-unknown-target",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --schedule target --target zed",
        "error",
        {"r.yaml": ROSTER_OK},
        "zed",
    ),
    C(
        "battle-target-without-name",
        "battle --roster {tmp}/r.yaml --evalset {pool}"
        " --out {tmp}/out --judge-roster judges --judge smollm2-judge --schedule target",
        "error",
        {"r.yaml": ROSTER_OK},
        "--target",
    ),
    C(
        "battle-unknown-anchor",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --schedule anchor --anchor zed",
        "error",
        {"r.yaml": ROSTER_OK},
        "zed",
    ),
    C(
        "battle-k-0",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --schedule sampled --k 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "--k",
    ),
    C(
        "battle-limit-0",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --limit 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "--limit",
    ),
    C(
        "battle-chunk-0",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --answer-chunk 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "chunk",
    ),
    C(
        "battle-retries-neg",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --judge-retries -1",
        "error",
        {"r.yaml": ROSTER_OK},
        "retries",
    ),
    C(
        "battle-max-answer-chars-0",
        "battle --roster {tmp}/r.yaml --evalset {pool}"
        " --out {tmp}/out --judge-roster judges --judge smollm2-judge --max-answer-chars 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "--max-answer-chars",
    ),
    C(
        "battle-judge-max-tokens-0",
        "battle --roster {tmp}/r.yaml --evalset {pool}"
        " --out {tmp}/out --judge-roster judges --judge smollm2-judge --judge-max-tokens 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "--judge-max-tokens",
    ),
    C(
        "battle-missing-template",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge --judge-template {tmp}/t.txt",
        "error",
        {"r.yaml": ROSTER_OK},
        "t.txt",
    ),
    C(
        "battle-missing-evalset",
        "battle --roster {tmp}/r.yaml --evalset {tmp}/nope"
        " --out {tmp}/out --judge-roster judges --judge smollm2-judge",
        "error",
        {"r.yaml": ROSTER_OK},
        "nope",
    ),
    C(
        "battle-evalset-is-jsonl",
        "battle --roster {tmp}/r.yaml --evalset {tmp}/p.jsonl"
        " --out {tmp}/out --judge-roster judges --judge smollm2-judge",
        "error",
        {"r.yaml": ROSTER_OK, "p.jsonl": GOOD},
        "Parquet",
    ),
    C(
        "battle-one-model",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out"
        " --judge-roster judges --judge smollm2-judge",
        "error",
        {"r.yaml": ROSTER_OK.rsplit("  - ", 1)[0]},
        "two",
    ),
    # ---- judge-eval ----------------------------------------------------------------
    C(
        "judge-eval-missing-pairs",
        "judge-eval {tmp}/nope.jsonl --out {tmp}/out",
        "error",
        match="nope.jsonl",
    ),
    C(
        "judge-eval-empty-pairs",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": ""},
        "p.jsonl",
    ),
    C(
        "judge-eval-garbage-pairs",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": b"\x00\xffjunk\n{]\n"},
        "p.jsonl",
    ),
    C("judge-eval-pairs-dir", "judge-eval {tmp} --out {tmp}/out", "error", match=""),
    C(
        "judge-eval-limit-0",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --limit 0",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "--limit",
    ),
    C(
        "judge-eval-chunk-0",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-chunk 0",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "--judge-chunk",
    ),
    C(
        "judge-eval-retries-neg",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-retries -2",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "--judge-retries",
    ),
    C(
        "judge-eval-unknown-judge",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge nobody",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "nobody",
    ),
    C(
        "judge-eval-missing-roster",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-roster {tmp}/none.yaml",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "none.yaml",
    ),
    C(
        "judge-eval-missing-recorded",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --recorded {tmp}/none.jsonl",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "none.jsonl",
    ),
    C(
        "judge-eval-max-tokens-0",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-max-tokens 0",
        "error",
        {"p.jsonl": jsonl(PAIR)},
        "--judge-max-tokens",
    ),
    # ---- elo -----------------------------------------------------------------------
    # ---- elo: valid battle files read as they are -----------------------------------
    C(
        "elo-csv-cells-span-lines",
        "elo {tmp}/b.csv --out {tmp}/out --style-control --bootstrap 0",
        "handled",
        {"b.csv": csv_of(texts_battles())},
        check=style_rated,
    ),
    C(
        "elo-parquet-dictionary-answers-style",
        "elo {tmp}/b.parquet --out {tmp}/out --style-control --bootstrap 0",
        "handled",
        {"b.parquet": parquet_of(texts_battles())},
        check=style_rated,
    ),
    C(
        "elo-jsonl-numeric-model-ids",
        "elo {tmp}/b.jsonl --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.jsonl": jsonl(
                *({"model_a": i % 3, "model_b": (i + 1) % 3, "winner": "model_a"} for i in range(9))
            )
        },
        check=models_are("0", "1", "2"),
    ),
    C(
        "elo-jsonl-text-after-a-block-of-nulls",
        "elo {tmp}/b.jsonl --out {tmp}/out --style-control --bootstrap 0",
        "handled",
        {
            "b.jsonl": jsonl(
                *(
                    {**r, "answer_a": None if i < 12000 else r["answer_a"] or "", "pad": "p" * 80}
                    for i, r in enumerate(texts_battles(30) * 500)
                )
            )
        },
        check=counted(15000),
    ),
    C(
        "elo-parquet-timestamps-since",
        "elo {tmp}/b.parquet --out {tmp}/out --since 2024-01-03 --until 2024-01-05 --bootstrap 0",
        "handled",
        {"b.parquet": parquet_of(TIMED, tstamp="timestamp[s]")},
        check=counted(2, filtered=4),
    ),
    C(
        "elo-parquet-dates-since",
        "elo {tmp}/b.parquet --out {tmp}/out --since 2024-01-03 --bootstrap 0",
        "handled",
        {
            "b.parquet": parquet_of(
                [{**undated(r), "date": r["tstamp"][:10]} for r in TIMED], date="date32"
            )
        },
        check=counted(4, filtered=2),
    ),
    C(
        "elo-style-lengths-missing-in-some",
        "elo {tmp}/b.csv --out {tmp}/out --style-control --bootstrap 0",
        "handled",
        {
            "b.csv": "model_a,model_b,winner,len_a,len_b\n"
            + "a,b,model_a,,3\n"
            + "a,b,model_b,5,9\nb,c,model_a,7,2\nc,a,tie,4,4\n" * 3
        },
        check=lambda tmp, out: _says(out, "1 battles without both lengths are left out"),
    ),
    C("elo-missing-file", "elo {tmp}/nope.csv --out {tmp}/out", "error", match="no such file"),
    C("elo-empty-file", "elo {tmp}/b.csv --out {tmp}/out", "error", {"b.csv": ""}, "empty"),
    C(
        "elo-header-only",
        "elo {tmp}/b.csv --out {tmp}/out",
        "error",
        {"b.csv": "model_a,model_b,winner\n"},
        "no battles",
    ),
    C(
        "elo-missing-columns",
        "elo {tmp}/b.csv --out {tmp}/out",
        "error",
        {"b.csv": "model_a,winner\na,model_a\n"},
        "battle columns",
    ),
    C(
        "elo-garbage-parquet",
        "elo {tmp}/b.parquet --out {tmp}/out",
        "error",
        {"b.parquet": b"PAR1 nonsense"},
        "b.parquet",
    ),
    C(
        "elo-garbage-jsonl",
        "elo {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": "not json at all\n{]\n"},
        "b.jsonl",
    ),
    C(
        "elo-wrong-extension",
        "elo {tmp}/b.txt --out {tmp}/out",
        "error",
        {"b.txt": BATTLES},
        "b.txt",
    ),
    C("elo-empty-dir", "elo {tmp}/d --out {tmp}/out", "error", {"d/.keep": ""}, "no Parquet"),
    C(
        "elo-unknown-winners",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": BATTLES + "a,b,draw\na,b,\nb,c,A\n"},
        check=lambda tmp, out: _dropped(tmp, 3),
    ),
    C(
        "elo-only-unknown-winners",
        "elo {tmp}/b.csv --out {tmp}/out",
        "error",
        {"b.csv": "model_a,model_b,winner\na,b,draw\nb,a,x\n"},
        "no battles",
    ),
    C(
        "elo-self-battles",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": BATTLES + "a,a,model_a\n"},
        check=lambda tmp, out: _dropped(tmp, 1),
    ),
    C(
        "elo-anchor-inf",
        "elo {tmp}/b.csv --out {tmp}/out --anchor a=inf",
        "error",
        {"b.csv": BATTLES},
        "anchor",
    ),
    C(
        "elo-anchor-nan",
        "elo {tmp}/b.csv --out {tmp}/out --anchor mean=nan",
        "error",
        {"b.csv": BATTLES},
        "anchor",
    ),
    C(
        "elo-anchor-garbage",
        "elo {tmp}/b.csv --out {tmp}/out --anchor banana",
        "error",
        {"b.csv": BATTLES},
        "anchor",
    ),
    C(
        "elo-anchor-unknown-model",
        "elo {tmp}/b.csv --out {tmp}/out --anchor zed=1100",
        "error",
        {"b.csv": BATTLES},
        "zed",
    ),
    C(
        "elo-anchor-model",
        "elo {tmp}/b.csv --out {tmp}/out --anchor a=1100 --bootstrap 5",
        "handled",
        {"b.csv": BATTLES},
        check=anchored_at("a", 1100),
    ),
    C(
        "elo-bootstrap-neg",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap -1",
        "error",
        {"b.csv": BATTLES},
        "--bootstrap",
    ),
    C(
        "elo-alpha-neg",
        "elo {tmp}/b.csv --out {tmp}/out --alpha -1",
        "error",
        {"b.csv": BATTLES},
        "--alpha",
    ),
    C(
        "elo-alpha-nan",
        "elo {tmp}/b.csv --out {tmp}/out --alpha nan",
        "error",
        {"b.csv": BATTLES},
        "--alpha",
    ),
    C(
        "elo-alpha-0-unbeaten",
        "elo {tmp}/b.csv --out {tmp}/out --alpha 0",
        "error",
        {"b.csv": ALWAYS_WINS},
        "--alpha",
    ),
    C(
        "elo-unbeaten-default-alpha",
        "elo {tmp}/b.csv --out {tmp}/out",
        "handled",
        {"b.csv": ALWAYS_WINS},
        check=finite_board,
    ),
    C(
        "elo-llmfao-400",
        "elo {tmp}/b.csv --out {tmp}/out",
        "handled",
        {"b.csv": "LLMFAO_400"},
        check=finite_board,
    ),
    C(
        "elo-models-unknown",
        "elo {tmp}/b.csv --out {tmp}/out --models x,y",
        "error",
        {"b.csv": BATTLES},
        "no battles",
    ),
    C(
        "elo-judge-without-column",
        "elo {tmp}/b.csv --out {tmp}/out --judge gpt4",
        "error",
        {"b.csv": BATTLES},
        "judge",
    ),
    C(
        "elo-since-garbage",
        "elo {tmp}/b.csv --out {tmp}/out --since yesterday",
        "error",
        {"b.csv": "model_a,model_b,winner,tstamp\na,b,model_a,1\n"},
        "yesterday",
    ),
    C(
        "elo-missing-reference",
        "elo {tmp}/b.csv --out {tmp}/out --reference {tmp}/r.csv",
        "error",
        {"b.csv": BATTLES},
        "r.csv",
    ),
    C("elo-out-is-file", "elo {tmp}/b.csv --out {tmp}/b.csv", "error", {"b.csv": BATTLES}, "--out"),
    C(
        "elo-ties-bad",
        "elo {tmp}/b.csv --out {tmp}/out --ties maybe",
        "error",
        {"b.csv": BATTLES},
        "invalid choice",
    ),
    C(
        "elo-null-model",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": BATTLES + ",b,model_a\n"},
        check=lambda tmp, out: _dropped(tmp, 1),
    ),
    # ---- train ---------------------------------------------------------------------
    C(
        "train-missing-data",
        "train sft --data {tmp}/nope --base builtin:smollm2-135m-instruct --out {tmp}/out",
        "error",
        match="nope",
    ),
    C(
        "train-bad-kind",
        "train ppo --data {tmp}/d --base x --out {tmp}/out",
        "error",
        match="invalid choice",
    ),
    C(
        "train-max-steps-0",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct"
        " --out {tmp}/out --max-steps 0",
        "error",
        match="max_steps",
    ),
    C(
        "train-lr-neg",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct"
        " --out {tmp}/out --learning-rate -1",
        "error",
        match="learning_rate",
    ),
    C(
        "train-batch-0",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct"
        " --out {tmp}/out --per-device-batch-size 0",
        "error",
        match="per_device_batch_size",
    ),
    C(
        "train-missing-base",
        "train sft --data {tmp}/d --base {tmp}/nobase --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": "SFT_SHARD"},
        "nobase",
    ),
    C(
        "train-rl-no-reward",
        "train rl --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": "SFT_SHARD"},
        "reward model",
    ),
    C(
        "train-data-empty-dir",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out",
        "error",
        {"d/.keep": ""},
        "d",
    ),
    # ---- flywheel ------------------------------------------------------------------
    C("flywheel-no-config", "flywheel --out {tmp}/out", "error", match="--config"),
    C(
        "flywheel-missing-config",
        "flywheel --config {tmp}/none.yaml --out {tmp}/out",
        "error",
        match="none.yaml",
    ),
    C(
        "flywheel-broken-yaml",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": "target: [smollm2\nphases: {"},
        "YAML",
    ),
    C(
        "flywheel-unknown-key",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": "targett: a\n"},
        "targett",
    ),
    C(
        "flywheel-bad-phase",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "phases: [sft, ppo]\n"},
        "ppo",
    ),
    C(
        "flywheel-negative-gap",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "sft_gap: [-1]\n"},
        "sft_gap",
    ),
    C(
        "flywheel-gap-not-number",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "dpo_gap: [big]\n"},
        "dpo_gap",
    ),
    C(
        "flywheel-no-target",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": "phases: [sft]\n"},
        "target",
    ),
    C(
        "flywheel-zero-slice",
        "flywheel --config {tmp}/f.yaml --out {tmp}/out",
        "error",
        {"f.yaml": FW + "slice_prompts: 0\n"},
        "slice_prompts",
    ),
    C(
        "flywheel-iteration-0",
        "flywheel --config demo --out {tmp}/out --iteration 0",
        "error",
        match="iteration",
    ),
    C(
        "flywheel-status-empty",
        "flywheel status --out {tmp}/nope",
        "handled",
        check=lambda tmp, out: _says(out, "no flywheel run here yet"),
    ),
    # ---- run -----------------------------------------------------------------------
    C("run-bootstrap-neg", "run --out {tmp}/out --bootstrap -1", "error", match="--bootstrap"),
    C(
        "run-battle-prompts-neg",
        "run --out {tmp}/out --battle-prompts -5",
        "error",
        match="--battle-prompts",
    ),
    C("run-missing-recipe", "run --out {tmp}/out --recipe nope", "error", match="nope"),
    C("run-unknown-judge", "run --out {tmp}/out --judge nobody", "error", match="nobody"),
    C(
        "run-missing-roster",
        "run --out {tmp}/out --roster {tmp}/none.yaml",
        "error",
        match="none.yaml",
    ),
    C(
        "run-flywheel-bad",
        "run --out {tmp}/out --flywheel {tmp}/none.yaml",
        "error",
        match="none.yaml",
    ),
    C("run-max-chars-0", "run --out {tmp}/out --max-chars 0", "error", match="positive"),
    C("run-out-is-file", "run --out {tmp}/f", "error", {"f": "x"}, "--out"),
    # ---- cluster flags (jobs/cluster.py, the lead's) -------------------------------
    C(
        "cluster-workers-0",
        "ingest {tmp}/p.jsonl --out {tmp}/out --workers 0",
        "error",
        {"p.jsonl": GOOD},
        "--workers",
        cluster=False,
    ),
    C(
        "cluster-workers-neg",
        "ingest {tmp}/p.jsonl --out {tmp}/out --workers -1",
        "error",
        {"p.jsonl": GOOD},
        "--workers",
        cluster=False,
    ),
    C(
        "cluster-threads-0",
        "ingest {tmp}/p.jsonl --out {tmp}/out --threads-per-worker 0",
        "error",
        {"p.jsonl": GOOD},
        "--threads-per-worker",
        cluster=False,
    ),
    C(
        "cluster-memory-1kib",
        "ingest {tmp}/p.jsonl --out {tmp}/out --memory-limit 1KiB",
        "error",
        {"p.jsonl": GOOD},
        "--memory-limit",
        cluster=False,
    ),
    C(
        "cluster-memory-banana",
        "ingest {tmp}/p.jsonl --out {tmp}/out --memory-limit banana",
        "error",
        {"p.jsonl": GOOD},
        "--memory-limit",
        cluster=False,
    ),
    C(
        "cluster-scheduler-file-missing",
        "ingest {tmp}/p.jsonl --out {tmp}/out --scheduler-file /nonexistent.json --wait-workers 2",
        "error",
        {"p.jsonl": GOOD},
        "nonexistent",
        cluster=False,
    ),
    C(
        "cluster-nothing-listening",
        "ingest {tmp}/p.jsonl --out {tmp}/out --scheduler-address tcp://127.0.0.1:1 --wait-workers 5",
        "error",
        {"p.jsonl": GOOD},
        "127.0.0.1:1",
        cluster=False,
    ),
    C(
        "cluster-wait-workers-neg",
        "ingest {tmp}/p.jsonl --out {tmp}/out --wait-workers -5",
        "error",
        {"p.jsonl": GOOD},
        "--wait-workers",
        cluster=False,
    ),
]


def user_texts_are(*expected: str):
    """The first user turn of every kept conversation (system turns aside)."""

    def check(tmp: Path, stdout: str) -> None:
        import pandas as pd

        frame = pd.read_parquet(tmp / "out")
        got = sorted(next(m["content"] for m in ms if m["role"] == "user") for ms in frame.messages)
        assert got == sorted(expected)

    return check


def parquet_rows(rows: list[dict]):
    """A Parquet file of rows of several shapes: every key a column, typed from all its
    values, null where a row lacks it."""

    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys = list(dict.fromkeys(k for r in rows for k in r))
        pq.write_table(pa.table({k: pa.array([r.get(k) for r in rows]) for k in keys}), path)

    return write


def empty_shard(path: Path) -> None:
    """An SFT shard part with trl's columns and no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"prompt": pa.array([], pa.string()), "completion": pa.array([], pa.string())}),
        path,
    )


def empty_pool(path: Path) -> None:
    """A conversation part with the columns `arena ingest` writes and no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema(
        [
            ("prompt_id", pa.string()),
            ("messages", pa.list_(turn)),
            ("source_file", pa.string()),
            ("source_line", pa.int64()),
        ]
    )
    pq.write_table(schema.empty_table(), path)


def ids_and_metadata_kept(tmp: Path, stdout: str) -> None:
    """Numeric ids become text source ids; other fields stay as the row's metadata."""
    import pandas as pd

    texts_are("first", "second")(tmp, stdout)
    frame = pd.read_parquet(tmp / "out").sort_values("source_line")
    assert list(frame.source_id) == ["1", "2"]
    first, second = (json.loads(m) for m in frame.metadata)
    assert first == {"meta": {"source": "x", "tags": [1, 2]}}
    assert second == {"score": 0.5, "extra": None}


def symlink_to(target: str):
    """A case's file that is a symlink to `target` (relative to the case's folder)."""

    def write(path: Path) -> None:
        path.symlink_to(path.parent / target, target_is_directory=True)

    return write


def rated(*names: str, battles: int | None = None):
    """A finite leaderboard of exactly these models (and, given, this many battles)."""

    def check(tmp: Path, stdout: str) -> None:
        models_are(*names)(tmp, stdout)
        if battles is not None:
            summary = json.loads((tmp / "out" / "summary.json").read_text())
            assert summary["battles"] == battles, summary

    return check


def online_rated(tmp: Path, stdout: str) -> None:
    finite_board(tmp, stdout)
    for row in leaderboard(tmp):
        assert math.isfinite(float(row["online_elo"])), row


def model_intact(tmp: Path, stdout: str) -> None:
    assert (tmp / "m" / "config.json").read_text() == '{"model_type": "llama"}'
    assert (tmp / "m" / "model.safetensors").read_bytes() == b"weights"


def roster_with(entry: str) -> str:
    """ROSTER_OK with one more model entry (a flow mapping)."""
    return ROSTER_OK + f"  - {entry}\n"


OPENAI = "{name: c, backend: openai, endpoint: 'http://127.0.0.1:9/v1'"
PAIRS2 = jsonl(PAIR, {**PAIR, "pair_id": "p2"})
BATTLE_ARGS = "battle --roster {tmp}/r.yaml --evalset {pool} --out {tmp}/out --judge a"
FLYWHEEL_ARGS = "flywheel --config {tmp}/f.yaml --out {tmp}/out"
TRAIN_ARGS = "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out"
EVALSET_ARGS = "build-evalset --pool {tmp}/p.jsonl --out {tmp}/out"
DECON_ARGS = "decontaminate --train {pool} --against {tmp}/b.jsonl --out {tmp}/out"
SHARD = {"d/part-00000.parquet": "SFT_SHARD"}

CASES += [
    # ---- ingest: valid input read as it is ------------------------------------------
    C(
        "ingest-unicode-prompts",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                json.dumps({"prompt": "Qu'est-ce que l'été ? 日本語 🙂"}, ensure_ascii=False)
            )
        },
        rows=(1, 0),
        check=texts_are("Qu'est-ce que l'été ? 日本語 🙂"),
    ),
    C(
        "ingest-unicode-line-separators-in-a-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                json.dumps(
                    {"prompt": "one\u2028two\u2029three\x85four\x0cfive"}, ensure_ascii=False
                ),
                {"prompt": "next"},
            )
        },
        rows=(2, 0),
        check=texts_are("one\u2028two\u2029three\x85four\x0cfive", "next"),
    ),
    C(
        "ingest-extra-columns-and-numeric-ids",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                {"id": 1, "prompt": "first", "meta": {"source": "x", "tags": [1, 2]}},
                {"id": 2, "prompt": "second", "score": 0.5, "extra": None},
            )
        },
        rows=(2, 0),
        check=ids_and_metadata_kept,
    ),
    C(
        "ingest-instruction-with-empty-input",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                {"instruction": "Add two and two.", "input": ""},
                {"instruction": "Say hi.", "input": None},
                {"instruction": "Say bye.", "output": ""},
            )
        },
        rows=(3, 0),
        check=texts_are("Add two and two.", "Say hi.", "Say bye."),
    ),
    C(
        "ingest-sharegpt-human-gpt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                {
                    "conversations": [
                        {"from": "human", "value": "Hi there"},
                        {"from": "gpt", "value": "Hello!"},
                    ]
                }
            )
        },
        rows=(1, 0),
        check=texts_are("Hi there"),
    ),
    C(
        "ingest-system-turn-first",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {
            "p.jsonl": jsonl(
                {
                    "messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Why is the sky blue?"},
                    ]
                }
            )
        },
        rows=(1, 0),
        check=user_texts_are("Why is the sky blue?"),
    ),
    C(
        "ingest-text-field",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": jsonl({"text": "Write a haiku."})},
        rows=(1, 0),
        check=texts_are("Write a haiku."),
    ),
    C(
        "ingest-parquet-prompts",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "handled",
        {"p.parquet": parquet_of([{"prompt": "alpha", "id": 1}, {"prompt": "beta", "id": 2}])},
        rows=(2, 0),
        check=texts_are("alpha", "beta"),
    ),
    C(
        "ingest-parquet-messages",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "handled",
        {
            "p.parquet": parquet_of(
                [
                    {"messages": [{"role": "user", "content": "gamma"}]},
                    {
                        "messages": [
                            {"role": "user", "content": "delta"},
                            {"role": "assistant", "content": "d"},
                        ]
                    },
                ]
            )
        },
        rows=(2, 0),
        check=texts_are("gamma", "delta"),
    ),
    C(
        "ingest-parquet-null-prompt",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "quarantined",
        {"p.parquet": parquet_of([{"prompt": "kept"}, {"prompt": None}, {"prompt": ""}])},
        rows=(1, 2),
    ),
    C(
        "ingest-jsonl-json-and-parquet-together",
        "ingest {tmp}/d --out {tmp}/out",
        "handled",
        {
            "d/a.jsonl": jsonl({"prompt": "from jsonl"}),
            "d/b.json": json.dumps([{"prompt": "from json"}]),
            "d/c.parquet": parquet_of([{"prompt": "from parquet"}]),
        },
        rows=(3, 0),
        check=texts_are("from jsonl", "from json", "from parquet"),
    ),
    C(
        "ingest-json-array-crlf-indented",
        "ingest {tmp}/p.json --out {tmp}/out",
        "handled",
        {"p.json": json.dumps([{"prompt": "x"}, {"prompt": "y"}], indent=2).replace("\n", "\r\n")},
        rows=(2, 0),
        check=texts_are("x", "y"),
    ),
    C(
        "ingest-bom-and-crlf",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": "\ufeff" + GOOD.replace("\n", "\r\n")},
        rows=(2, 0),
        check=texts_are("What is the capital of France?", "Name three primes."),
    ),
    C(
        "ingest-multiline-prompt",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": jsonl({"prompt": "line one\nline two\r\n\tindented"})},
        rows=(1, 0),
        check=texts_are("line one\nline two\r\n\tindented"),
    ),
    C(
        "ingest-parquet-several-shapes",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "handled",
        {
            "p.parquet": parquet_rows(
                [
                    {"prompt": "as prompt"},
                    {"turns": ["as turns"]},
                    {"messages": [{"role": "user", "content": "as messages"}]},
                    {"instruction": "as instruction", "input": None},
                ]
            )
        },
        rows=(4, 0),
        check=texts_are("as prompt", "as turns", "as messages", "as instruction"),
    ),
    # ---- ingest: rows never vanish ----------------------------------------------------
    C(
        "ingest-parquet-wrong-types",
        "ingest {tmp}/p.parquet --out {tmp}/out",
        "quarantined",
        {
            "p.parquet": parquet_rows(
                [{"prompt": "ok", "turns": None}, {"prompt": None, "turns": [1]}]
            )
        },
        rows=(1, 1),
    ),
    C(
        "ingest-bad-rows-after-a-bad-line",
        "ingest {tmp}/p.jsonl --out {tmp}/out",
        "quarantined",
        {
            "p.jsonl": '{"prompt": "a"}\n{broken\n{"prompt": "b"}\n\n{"prompt": 5}\n{"prompt": "c"}\n'
        },
        rows=(3, 2),
    ),
    # ---- ingest: environment and flags ------------------------------------------------
    C(
        "ingest-out-holds-the-input",
        "ingest {tmp}/out/p.jsonl --out {tmp}/out",
        "error",
        {"out/p.jsonl": GOOD},
        "holds the input",
    ),
    C(
        "ingest-out-inside-the-input-folder",
        "ingest {tmp}/d --out {tmp}/d/out",
        "error",
        {"d/p.jsonl": GOOD},
        "is inside the input",
    ),
    C(
        "ingest-chunk-mb-0",
        "ingest {tmp}/p.jsonl --out {tmp}/out --chunk-mb 0",
        "error",
        {"p.jsonl": GOOD},
        "positive",
    ),
    C(
        "ingest-max-chars-fraction",
        "ingest {tmp}/p.jsonl --out {tmp}/out --max-chars 1.5",
        "error",
        {"p.jsonl": GOOD},
        "--max-chars",
    ),
    C(
        "ingest-out-is-a-symlink-to-a-users-folder",
        "ingest {tmp}/p.jsonl --out {tmp}/out --overwrite",
        "error",
        {"p.jsonl": GOOD, "mine/notes.txt": "mine\n", "out": symlink_to("mine")},
        "did not write (notes.txt)",
        check=lambda tmp, out: _says((tmp / "mine" / "notes.txt").read_text(), "mine"),
    ),
    C(
        "ingest-path-given-twice",
        "ingest {tmp}/p.jsonl {tmp}/p.jsonl --out {tmp}/out",
        "handled",
        {"p.jsonl": GOOD},
        rows=(2, 0),
        check=texts_are("What is the capital of France?", "Name three primes."),
    ),
    # ---- battle: roster values refused before a cluster starts ------------------------
    C(
        "battle-roster-openai-timeout-negative",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", timeout: -1}")},
        "timeout",
    ),
    C(
        "battle-roster-openai-max-wait-infinite",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", max_wait: .inf}")},
        "max_wait",
    ),
    C(
        "battle-roster-openai-max-wait-zero",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", max_wait: 0}")},
        "max_wait",
    ),
    C(
        "battle-roster-openai-timeout-nan",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", timeout: .nan}")},
        "timeout",
    ),
    C(
        "battle-roster-openai-timeout-quoted",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", timeout: '30'}")},
        "timeout must be float",
    ),
    C(
        "battle-roster-openai-concurrency-0",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", concurrency: 0}")},
        "concurrency",
    ),
    C(
        "battle-roster-openai-retries-negative",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", retries: -1}")},
        "retries",
    ),
    C(
        "battle-roster-openai-api-key-literal",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", api_key: sk-123}")},
        "api_key is not accepted",
    ),
    C(
        "battle-roster-openai-key-in-api-key-env",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with(OPENAI + ", api_key_env: sk-abc-123}")},
        "api_key_env must name an environment variable",
    ),
    C(
        "battle-roster-openai-endpoint-credentials",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with("{name: c, backend: openai, endpoint: 'http://u:p@h/v1'}")},
        "must not carry credentials",
    ),
    C(
        "battle-roster-openai-endpoint-unset-variable",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with("{name: c, backend: openai, endpoint: '${ARENA_NO_SUCH_VAR}/v1'}")},
        "not an http(s) URL",
    ),
    C(
        "battle-roster-vllm-memory-utilization-1.5",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: vllm, path: builtin:smollm2-135m-instruct,"
                " gpu_memory_utilization: 1.5}"
            )
        },
        "gpu_memory_utilization",
    ),
    C(
        "battle-roster-vllm-tensor-parallel-0",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: vllm, path: builtin:smollm2-135m-instruct,"
                " tensor_parallel_size: 0}"
            )
        },
        "tensor_parallel_size",
    ),
    C(
        "battle-roster-vllm-kv-cache-negative",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: vllm, path: builtin:smollm2-135m-instruct, kv_cache_gib: -1}"
            )
        },
        "kv_cache_gib",
    ),
    C(
        "battle-roster-transformers-batch-size-0",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " batch_size: 0}"
            )
        },
        "batch_size",
    ),
    C(
        "battle-roster-max-model-len-0",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " max_model_len: 0}"
            )
        },
        "max_model_len",
    ),
    C(
        "battle-roster-trust-remote-code-string",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " trust_remote_code: 'yes'}"
            )
        },
        "trust_remote_code must be bool",
    ),
    C(
        "battle-roster-sampling-temperature-text",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " sampling: {temperature: hot}}"
            )
        },
        "sampling.temperature",
    ),
    C(
        "battle-roster-sampling-max-tokens-fraction",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " sampling: {max_tokens: 1.5}}"
            )
        },
        "sampling.max_tokens",
    ),
    C(
        "battle-roster-sampling-top-p-0",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " sampling: {top_p: 0}}"
            )
        },
        "top_p",
    ),
    C(
        "battle-roster-sampling-key-misspelt",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " sampling: {temprature: 0}}"
            )
        },
        "did you mean 'temperature'",
    ),
    C(
        "battle-roster-entry-key-misspelt",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " batchsize: 4}"
            )
        },
        "did you mean 'batch_size'",
    ),
    C(
        "battle-roster-top-level-key-misspelt",
        BATTLE_ARGS,
        "error",
        {"r.yaml": ROSTER_OK.replace("models:", "model:")},
        "did you mean 'models'",
    ),
    C(
        "battle-roster-defaults-not-mapping",
        BATTLE_ARGS,
        "error",
        {"r.yaml": "defaults: [1, 2]\n" + ROSTER_OK},
        "`defaults` must be a mapping",
    ),
    C(
        "battle-roster-name-number",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: 5, backend: transformers, path: builtin:smollm2-135m-instruct}"
            )
        },
        "name must be str",
    ),
    C(
        "battle-roster-dtype-unknown",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " dtype: float8}"
            )
        },
        "dtype 'float8'",
    ),
    C(
        "battle-roster-unknown-builtin",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with("{name: c, backend: transformers, path: builtin:gpt-17}")},
        "unknown model builtin:gpt-17",
    ),
    C(
        "battle-roster-model-folder-missing",
        BATTLE_ARGS,
        "error",
        {"r.yaml": roster_with("{name: c, backend: vllm, path: /nonexistent/arena-model}")},
        "/nonexistent/arena-model does not exist",
    ),
    C(
        "battle-roster-chat-template-file-missing",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": roster_with(
                "{name: c, backend: transformers, path: builtin:smollm2-135m-instruct,"
                " chat_template: tpl.jinja}"
            )
        },
        "chat_template tpl.jinja: no such file",
    ),
    C(
        "battle-roster-recorded-answers-folder-empty",
        BATTLE_ARGS,
        "error",
        {
            "r.yaml": ROSTER_OK + "  - {name: c, backend: recorded, path: answers}\n",
            "answers/.keep": "",
        },
        "no .jsonl files",
    ),
    C(
        "battle-roster-is-a-folder",
        "battle --roster {tmp}/r --evalset {pool} --out {tmp}/out --judge a",
        "error",
        {"r/models.yaml": ROSTER_OK},
        "no such file",
    ),
    C(
        "battle-roster-empty-file",
        BATTLE_ARGS,
        "error",
        {"r.yaml": ""},
        "non-empty list of models",
    ),
    C(
        "battle-no-prompt-every-model-answers",
        BATTLE_ARGS,
        "error",
        {"r.yaml": ROSTER_OK},
        "no prompt every roster model can answer",
        connects=True,
        check=lambda tmp, out: _nothing_done(tmp / "out"),
    ),
    C(
        "battle-evalset-without-rows",
        "battle --roster {tmp}/r.yaml --evalset {tmp}/e --out {tmp}/out --judge a",
        "error",
        {"r.yaml": ROSTER_OK, "e/part-00000.parquet": empty_pool},
        "no rows",
    ),
    # ---- battle: flags of another schedule, bad values -------------------------------
    C(
        "battle-k-without-sampled-schedule",
        BATTLE_ARGS + " --k 3",
        "error",
        {"r.yaml": ROSTER_OK},
        "--k applies to --schedule sampled, not all-pairs",
    ),
    C(
        "battle-seed-without-sampled-schedule",
        BATTLE_ARGS + " --schedule anchor --anchor b --seed 7",
        "error",
        {"r.yaml": ROSTER_OK},
        "--seed applies to --schedule sampled, not anchor",
    ),
    C(
        "battle-limit-negative",
        BATTLE_ARGS + " --limit -3",
        "error",
        {"r.yaml": ROSTER_OK},
        "--limit",
    ),
    C(
        "battle-limit-fraction",
        BATTLE_ARGS + " --limit 2.5",
        "error",
        {"r.yaml": ROSTER_OK},
        "--limit",
    ),
    C(
        "battle-judge-chunk-0",
        BATTLE_ARGS + " --judge-chunk 0",
        "error",
        {"r.yaml": ROSTER_OK},
        "chunk sizes >= 1",
    ),
    C(
        "battle-combine-unknown",
        BATTLE_ARGS + " --combine majority",
        "error",
        {"r.yaml": ROSTER_OK},
        "invalid choice",
    ),
    C(
        "battle-opponent-not-in-roster",
        BATTLE_ARGS + " --schedule target --target a --opponents zed",
        "error",
        {"r.yaml": ROSTER_OK},
        "zed",
    ),
    C(
        "battle-evalset-empty-folder",
        "battle --roster {tmp}/r.yaml --evalset {tmp}/e --out {tmp}/out --judge a",
        "error",
        {"r.yaml": ROSTER_OK, "e/.keep": ""},
        "part-",
    ),
    C(
        "battle-out-is-the-evalset",
        "battle --roster {tmp}/r.yaml --evalset {pool} --out {pool} --judge a",
        "error",
        {"r.yaml": ROSTER_OK},
        "holds the input",
    ),
    C(
        "battle-cache-is-a-file",
        BATTLE_ARGS + " --cache {tmp}/c",
        "error",
        {"r.yaml": ROSTER_OK, "c": "x"},
        "--cache",
    ),
    C(
        "battle-template-not-a-template",
        BATTLE_ARGS + " --judge-template {tmp}/t.txt",
        "error",
        {"r.yaml": ROSTER_OK, "t.txt": "Judge these answers please.\n"},
        "missing field(s) {instruction}",
    ),
    # ---- flywheel: config values refused before a cluster starts ----------------------
    C(
        "flywheel-combine-unknown",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "combine: majority\n"},
        "combine",
    ),
    C(
        "flywheel-judge-scoring-unknown",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "judge_scoring: vibes\n"},
        "judge_scoring 'vibes'",
    ),
    C(
        "flywheel-phases-empty",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "phases: []\n"},
        "phases []",
    ),
    C(
        "flywheel-rl-without-reward",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "phases: [sft, rl]\n"},
        "phase rl needs phase reward",
    ),
    C(
        "flywheel-slices-fewer-than-phases",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "slices: 2\n"},
        "2 slices hold no iteration",
    ),
    C(
        "flywheel-slices-0",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "slices: 0\n"},
        "slices must be at least 1",
    ),
    C(
        "flywheel-rate-prompts-negative",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "rate_prompts: -1\n"},
        "rate_prompts must be at least 1",
    ),
    C(
        "flywheel-slice-seed-fraction",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "slice_seed: 1.5\n"},
        "slice_seed must be a whole number",
    ),
    C(
        "flywheel-target-number",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": "target: 5\n"},
        "target must be text",
    ),
    C(
        "flywheel-empty-config",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": ""},
        "`target`",
    ),
    C(
        "flywheel-config-is-a-list",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": "- target: a\n"},
        "expected a mapping",
    ),
    C(
        "flywheel-config-is-a-folder",
        "flywheel --config {tmp}/f --out {tmp}/out",
        "error",
        {"f/f.yaml": FW},
        "no such flywheel config",
    ),
    C(
        "flywheel-train-not-mapping",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train: [max_steps, 2]\n"},
        "train must be a mapping",
    ),
    C(
        "flywheel-train-by-kind-unknown-phase",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train_by_kind: {ppo: {max_steps: 2}}\n"},
        "train_by_kind: ppo is no phase",
    ),
    C(
        "flywheel-train-max-steps-0",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train: {max_steps: 0}\n"},
        "max_steps must be at least 1",
    ),
    C(
        "flywheel-train-beta-0-for-dpo",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train_by_kind: {dpo: {beta: 0}}\n"},
        "beta",
    ),
    C(
        "flywheel-train-device-unknown",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train: {device: tpu}\n"},
        "device 'tpu'",
    ),
    C(
        "flywheel-train-resources-malformed",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "train: {resources: GPU}\n"},
        "is not NAME=AMOUNT",
    ),
    C(
        "flywheel-gap-above-nine",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "dpo_gap: 10\n"},
        "dpo_gap [10.0]",
    ),
    C(
        "flywheel-gap-nan",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "reward_gap: .nan\n"},
        "reward_gap",
    ),
    C(
        "flywheel-gap-empty-list",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "sft_gap: []\n"},
        "sft_gap []",
    ),
    C(
        "flywheel-iteration-beyond-slices",
        "flywheel --config demo --out {tmp}/out --iteration 99",
        "error",
        match="iteration 99",
    ),
    C(
        "flywheel-iteration-negative",
        "flywheel --config demo --out {tmp}/out --iteration -1",
        "error",
        match="iteration",
    ),
    C(
        "flywheel-roster-missing",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "roster: nowhere.yaml\n"},
        "nowhere.yaml",
    ),
    C(
        "flywheel-target-not-in-roster",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": "target: nobody\n"},
        "nobody",
    ),
    C(
        "flywheel-judge-not-in-roster",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "judge: nobody\n"},
        "nobody",
    ),
    C(
        "flywheel-pool-missing",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "pool: nowhere\n"},
        "nowhere",
    ),
    C(
        "flywheel-decontaminate-against-missing",
        FLYWHEEL_ARGS,
        "error",
        {"f.yaml": FW + "pool: pool\ndecontaminate_against: [nowhere]\n", "pool/.keep": ""},
        "nowhere",
    ),
    C(
        "flywheel-status-of-a-users-folder",
        "flywheel status --out {tmp}/out",
        "handled",
        {**USER_FILES},
        check=lambda tmp, out: (
            _says(out, "no flywheel run here yet"),
            users_files_intact(tmp, out),
        ),
    ),
    C(
        "flywheel-status-state-is-garbage",
        "flywheel status --out {tmp}/out",
        "error",
        {"out/flywheel.json": "{not json"},
        "flywheel.json",
    ),
    # ---- train: settings and data refused before a cluster starts ---------------------
    C(
        "train-beta-nan",
        "train dpo --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out --beta nan",
        "error",
        SHARD,
        "beta nan: expected a positive KL coefficient",
    ),
    C(
        "train-beta-inf",
        "train dpo --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out --beta inf",
        "error",
        SHARD,
        "beta inf: expected a positive KL coefficient",
    ),
    C("train-lr-nan", TRAIN_ARGS + " --learning-rate nan", "error", SHARD, "learning_rate"),
    C("train-lr-1", TRAIN_ARGS + " --learning-rate 1", "error", SHARD, "learning_rate"),
    C(
        "train-beta-for-sft",
        TRAIN_ARGS + " --beta 0.2",
        "error",
        SHARD,
        "--beta applies to `arena train dpo`, not sft",
    ),
    C(
        "train-gradient-accumulation-0",
        TRAIN_ARGS + " --gradient-accumulation 0",
        "error",
        SHARD,
        "gradient_accumulation must be at least 1",
    ),
    C("train-max-length-0", TRAIN_ARGS + " --max-length 0", "error", SHARD, "max_length"),
    C("train-max-steps-fraction", TRAIN_ARGS + " --max-steps 1.5", "error", SHARD, "--max-steps"),
    C("train-device-tpu", TRAIN_ARGS + " --device tpu", "error", SHARD, "invalid choice"),
    C("train-resources-malformed", TRAIN_ARGS + " --resources GPU", "error", SHARD, "NAME=AMOUNT"),
    C(
        "train-rl-one-generation",
        "train rl --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out"
        " --reward-model {tmp}/rm --rl-num-generations 1",
        "error",
        SHARD,
        "rl_num_generations must be at least 2",
    ),
    C(
        "train-rl-batch-not-a-multiple-of-generations",
        "train rl --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out"
        " --reward-model {tmp}/rm --rl-num-generations 3",
        "error",
        SHARD,
        "must be a multiple",
    ),
    C(
        "train-rl-completion-longer-than-max-length",
        "train rl --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out"
        " --reward-model {tmp}/rm --max-length 64 --rl-max-completion-length 64",
        "error",
        SHARD,
        "rl_max_completion_length 64",
    ),
    C(
        "train-rl-reward-model-missing",
        "train rl --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out"
        " --reward-model {tmp}/rm",
        "error",
        SHARD,
        "rm does not load",
    ),
    C(
        "train-reward-model-for-sft",
        TRAIN_ARGS + " --reward-model {tmp}/rm",
        "error",
        {**SHARD, "rm/config.json": "{}"},
        "--reward-model",
    ),
    C(
        "train-rl-generations-for-sft",
        TRAIN_ARGS + " --rl-num-generations 4",
        "error",
        SHARD,
        "--rl-num-generations applies to `arena train rl`, not sft",
    ),
    C(
        "train-data-is-a-file",
        "train sft --data {tmp}/d.parquet --base builtin:smollm2-135m-instruct --out {tmp}/out",
        "error",
        {"d.parquet": "SFT_SHARD"},
        "not a folder",
    ),
    C(
        "train-data-wrong-columns-for-dpo",
        "train dpo --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/out",
        "error",
        SHARD,
        "dpo training",
    ),
    C(
        "train-data-no-rows",
        TRAIN_ARGS,
        "error",
        {"d/part-00000.parquet": empty_shard},
        "has no rows",
    ),
    C(
        "train-data-garbage-part",
        TRAIN_ARGS,
        "error",
        {"d/part-00000.parquet": b"PAR1 not really"},
        "part-00000.parquet: not a readable Parquet file",
    ),
    C(
        "train-base-unknown-builtin",
        "train sft --data {tmp}/d --base builtin:gpt-17 --out {tmp}/out",
        "error",
        SHARD,
        "gpt-17",
    ),
    C(
        "train-base-is-a-file",
        "train sft --data {tmp}/d --base {tmp}/model.bin --out {tmp}/out",
        "error",
        {**SHARD, "model.bin": b"\x00weights"},
        "model.bin does not load",
    ),
    C(
        "train-out-is-the-base-model",
        "train sft --data {tmp}/d --base {tmp}/m --out {tmp}/m --overwrite",
        "error",
        {
            **SHARD,
            "m/config.json": '{"model_type": "llama"}',
            "m/model.safetensors": b"weights",
        },
        "did not write (config.json, model.safetensors)",
        check=model_intact,
    ),
    C(
        "train-out-is-the-data",
        "train sft --data {tmp}/d --base builtin:smollm2-135m-instruct --out {tmp}/d",
        "error",
        SHARD,
        "is no training output",
    ),
    # ---- judge-eval: pairs files without a usable row are one line ---------------------
    C(
        "judge-eval-votes-negative",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "crowd_votes": {"x": -1, "y": 2}})},
        "crowd_votes.x must be a count >= 0",
    ),
    C(
        "judge-eval-votes-fraction",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "crowd_votes": {"x": 1.5, "y": 2}})},
        "crowd_votes.x must be a count",
    ),
    C(
        "judge-eval-votes-unknown-label",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "crowd_votes": {"x": 1, "maybe": 2}})},
        "unknown label 'maybe'",
    ),
    C(
        "judge-eval-votes-all-zero",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "crowd_votes": {"x": 0, "y": 0, "tie": 0}})},
        "crowd_votes: no votes",
    ),
    C(
        "judge-eval-pair-id-bool",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "pair_id": True})},
        "pair_id must be an integer or a non-empty string",
    ),
    C(
        "judge-eval-prompt-blank",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "prompt": "  \n"})},
        "prompt is empty",
    ),
    C(
        "judge-eval-answer-number",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "answer_y": 42})},
        "answer_y must be a string",
    ),
    C(
        "judge-eval-gpt4-verdict-unknown",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out",
        "error",
        {"p.jsonl": jsonl({**PAIR, "gpt4_verdict": "left"})},
        "gpt4_verdict 'left'",
    ),
    C(
        "judge-eval-pairs-is-parquet",
        "judge-eval {tmp}/p.parquet --out {tmp}/out",
        "error",
        {"p.parquet": parquet_of([PAIR])},
        "no usable labelled pairs",
    ),
    C(
        "judge-eval-recorded-no-usable-verdict",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --recorded {tmp}/r.jsonl",
        "error",
        {"p.jsonl": PAIRS2, "r.jsonl": jsonl({"pair_id": "p1", "verdict": "A"}, {"verdict": "x"})},
        "no usable verdicts",
    ),
    C(
        "judge-eval-recorded-is-a-folder",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --recorded {tmp}/r",
        "error",
        {"p.jsonl": PAIRS2, "r/r.jsonl": jsonl({"pair_id": "p1", "verdict": "x"})},
        "a folder, not a file",
    ),
    C(
        "judge-eval-out-is-the-pairs-file",
        "judge-eval {tmp}/p.jsonl --out {tmp}/p.jsonl",
        "error",
        {"p.jsonl": PAIRS2},
        "is a file; give a folder",
    ),
    C(
        "judge-eval-max-answer-chars-0",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --max-answer-chars 0",
        "error",
        {"p.jsonl": PAIRS2},
        "--max-answer-chars",
    ),
    C(
        "judge-eval-limit-negative",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --limit -5",
        "error",
        {"p.jsonl": PAIRS2},
        "--limit",
    ),
    C(
        "judge-eval-template-missing",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-template {tmp}/t.txt",
        "error",
        {"p.jsonl": PAIRS2},
        "t.txt",
    ),
    C(
        "judge-eval-template-is-a-folder",
        "judge-eval {tmp}/p.jsonl --out {tmp}/out --judge-template {tmp}/t",
        "error",
        {"p.jsonl": PAIRS2, "t/template.txt": "{instruction}"},
        "a folder, not a file",
    ),
    # ---- elo: valid battle files read as they are ---------------------------------------
    C(
        "elo-csv-bom-header",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": "\ufeff" + BATTLES},
        check=rated("a", "b", "c", battles=5),
    ),
    C(
        "elo-csv-crlf",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": BATTLES.replace("\n", "\r\n")},
        check=rated("a", "b", "c", battles=5),
    ),
    C(
        "elo-csv-trailing-blank-lines",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": BATTLES + "\n\n"},
        check=rated("a", "b", "c", battles=5),
    ),
    C(
        "elo-csv-extra-columns-and-quoted-names",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.csv": "question_id,model_a,model_b,winner,judge,turn\n"
            + '1,"llama, 7b",b,model_a,gpt-4,1\n'
            + '2,b,"llama, 7b",model_b,gpt-4,1\n'
            + '3,"llama, 7b",b,tie,gpt-4,2\n'
        },
        check=rated("llama, 7b", "b", battles=3),
    ),
    C(
        "elo-csv-names-that-look-like-numbers-or-na",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": "model_a,model_b,winner\n007,7,model_a\n7,NA,model_b\nNA,007,tie\n"},
        check=rated("007", "7", "NA", battles=3),
    ),
    C(
        "elo-jsonl-bom-and-crlf",
        "elo {tmp}/b.jsonl --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.jsonl": "\ufeff"
            + jsonl(
                *(
                    dict(zip(("model_a", "model_b", "winner"), r.split(",")))
                    for r in BATTLES.splitlines()[1:]
                )
            ).replace("\n", "\r\n")
        },
        check=rated("a", "b", "c", battles=5),
    ),
    C(
        "elo-unicode-model-names",
        "elo {tmp}/b.jsonl --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.jsonl": jsonl(
                *(
                    json.dumps({"model_a": a, "model_b": b, "winner": w}, ensure_ascii=False)
                    for a, b, w in [("模型", "modèle", "model_a"), ("modèle", "🤖", "tie")] * 2
                )
            )
        },
        check=rated("模型", "modèle", "🤖", battles=4),
    ),
    C(
        "elo-left-right-votes",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 0",
        "handled",
        {"b.csv": "left,right,winner\na,b,left\nb,c,right\nc,a,tie\na,c,left\n"},
        check=rated("a", "b", "c", battles=4),
    ),
    C(
        "elo-csv-jsonl-parquet-together",
        "elo {tmp}/b.csv {tmp}/b.jsonl {tmp}/b.parquet --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.csv": BATTLES,
            "b.jsonl": jsonl({"model_a": "a", "model_b": "d", "winner": "model_b"}),
            "b.parquet": parquet_of([{"model_a": "d", "model_b": "c", "winner": "tie"}]),
        },
        check=rated("a", "b", "c", "d", battles=7),
    ),
    C(
        "elo-json-array-file",
        "elo {tmp}/b.json --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.json": "\ufeff"
            + json.dumps(
                [{"model_a": "a", "model_b": "b", "winner": "model_a"}] * 2
                + [{"model_a": "b", "model_b": "c", "winner": "tie", "judge": "gpt-4"}],
                indent=2,
            )
        },
        check=rated("a", "b", "c", battles=3),
    ),
    C(
        "elo-json-array-numeric-ids-and-null-winner",
        "elo {tmp}/b.json --out {tmp}/out --bootstrap 0",
        "handled",
        {
            "b.json": json.dumps(
                [{"model_a": i % 3, "model_b": (i + 1) % 3, "winner": "model_a"} for i in range(6)]
                + [{"model_a": 0, "model_b": 1, "winner": None}]
            )
        },
        check=lambda tmp, out: (_dropped(tmp, 1), models_are("0", "1", "2")(tmp, out)),
    ),
    C(
        "elo-json-array-of-numbers",
        "elo {tmp}/b.json --out {tmp}/out",
        "error",
        {"b.json": "[1, 2, 3]"},
        "expected a JSON array of battle objects",
    ),
    C(
        "elo-jsonl-iso-tstamp-since",
        "elo {tmp}/b.jsonl --out {tmp}/out --since 2024-01-03 --bootstrap 0",
        "handled",
        {"b.jsonl": jsonl(*TIMED)},
        check=counted(4, filtered=2),
    ),
    C(
        "elo-csv-unix-tstamp-until",
        "elo {tmp}/b.csv --out {tmp}/out --until 2024-01-03 --bootstrap 0",
        "handled",
        {
            "b.csv": "model_a,model_b,winner,tstamp\n"
            + "".join(f"a,b,model_a,{1704067200 + d * 86400}\n" for d in range(5))
        },
        check=counted(2, filtered=3),
    ),
    C(
        "elo-csv-empty-tstamp-is-filtered-not-lost",
        "elo {tmp}/b.csv --out {tmp}/out --since 2024-01-01 --bootstrap 0",
        "handled",
        {
            "b.csv": "model_a,model_b,winner,tstamp\na,b,model_a,1704153600\nb,c,tie,\nc,a,model_b,1704153600\n"
        },
        check=counted(2, filtered=1),
    ),
    C(
        "elo-bothbad-ignore",
        "elo {tmp}/b.csv --out {tmp}/out --bothbad ignore --bootstrap 0",
        "handled",
        {"b.csv": BATTLES + "a,b,tie (bothbad)\n"},
        check=finite_board,
    ),
    C(
        "elo-judge-filter",
        "elo {tmp}/b.csv --out {tmp}/out --judge gpt-4 --bootstrap 0",
        "handled",
        {
            "b.csv": "model_a,model_b,winner,judge\na,b,model_a,gpt-4\nb,c,tie,gpt-4\na,c,model_b,llama\n"
        },
        check=counted(2, filtered=1),
    ),
    C(
        "elo-models-filter",
        "elo {tmp}/b.csv --out {tmp}/out --models a,b --bootstrap 0",
        "handled",
        {"b.csv": BATTLES},
        check=lambda tmp, out: (counted(2, filtered=3)(tmp, out), models_are("a", "b")(tmp, out)),
    ),
    C(
        "elo-online-elo-column",
        "elo {tmp}/b.csv --out {tmp}/out --online-elo --bootstrap 0",
        "handled",
        {"b.csv": BATTLES},
        check=online_rated,
    ),
    # ---- elo: one line for what cannot be rated -----------------------------------------
    C(
        "elo-bootstrap-fraction",
        "elo {tmp}/b.csv --out {tmp}/out --bootstrap 2.5",
        "error",
        {"b.csv": BATTLES},
        "--bootstrap",
    ),
    C(
        "elo-anchor-without-model",
        "elo {tmp}/b.csv --out {tmp}/out --anchor =1100",
        "error",
        {"b.csv": BATTLES},
        "anchor",
    ),
    C(
        "elo-until-before-since",
        "elo {tmp}/b.jsonl --out {tmp}/out --since 2024-01-05 --until 2024-01-02",
        "error",
        {"b.jsonl": jsonl(*TIMED)},
        "no battles",
    ),
    C(
        "elo-folder-of-side-outputs-only",
        "elo {tmp}/d --out {tmp}/out",
        "error",
        {
            "d/_dropped/part-0.parquet": parquet_of(
                [{"model_a": "a", "model_b": "b", "winner": "tie"}]
            )
        },
        "no Parquet files",
    ),
    C(
        "elo-out-is-the-input-folder",
        "elo {tmp}/d --out {tmp}/d",
        "error",
        {"d/b.parquet": parquet_of(TIMED)},
        "holds the input",
    ),
    C(
        "elo-jsonl-not-utf8",
        "elo {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"b.jsonl": '{"model_a": "caf\xe9", "model_b": "b", "winner": "tie"}\n'.encode("latin-1")},
        "b.jsonl: cannot read battles (UnicodeDecodeError",
    ),
    C(
        "elo-seed-text",
        "elo {tmp}/b.csv --out {tmp}/out --seed abc",
        "error",
        {"b.csv": BATTLES},
        "--seed",
    ),
    # ---- dedup ---------------------------------------------------------------------------
    C(
        "dedup-semantic-threshold-0",
        "dedup --semantic {pool} --out {tmp}/out --threshold 0",
        "error",
        match="threshold",
    ),
    C(
        "dedup-semantic-threshold-1.5",
        "dedup --semantic {pool} --out {tmp}/out --threshold 1.5",
        "error",
        match="threshold",
    ),
    C(
        "dedup-semantic-more-clusters-than-rows",
        "dedup --semantic {pool} --out {tmp}/out --clusters 5000",
        "error",
        match="more than the",
    ),
    C(
        "dedup-semantic-assign-9",
        "dedup --semantic {pool} --out {tmp}/out --assign 9",
        "error",
        match="--assign",
    ),
    C(
        "dedup-semantic-block-rows-0",
        "dedup --semantic {pool} --out {tmp}/out --block-rows 0",
        "error",
        match="block_rows",
    ),
    C(
        "dedup-semantic-search-choice-bad",
        "dedup --semantic {pool} --out {tmp}/out --search fuzzy",
        "error",
        match="--search",
    ),
    C(
        "dedup-semantic-with-num-perm",
        "dedup --semantic {pool} --out {tmp}/out --num-perm 64",
        "error",
        match="--near",
    ),
    C(
        "dedup-semantic-boundary-reach-above-1",
        "dedup --semantic {pool} --out {tmp}/out --boundary-reach 1.5",
        "error",
        match="--boundary-reach",
    ),
    C(
        "dedup-exact-with-assign",
        "dedup --exact {pool} --out {tmp}/out --assign 2",
        "error",
        match="--semantic",
    ),
    C(
        "dedup-semantic-no-vectors-no-messages",
        "dedup --semantic {tmp}/d --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": parquet_of([{"prompt_id": "a"}])},
        "semantic dedup reads vectors, or conversations to embed",
    ),
    C(
        "dedup-semantic-empty-folder",
        "dedup --semantic {tmp}/d --out {tmp}/out",
        "error",
        {"d/x.txt": "not a part"},
        "no part-*.parquet",
    ),
    C(
        "dedup-semantic-embeds-a-pool-without-vectors",
        "dedup --semantic {pool} --out {tmp}/out --search clusters",
        "handled",
        check=semantic_dedup_accounts_for_every_row,
    ),
    C(
        "dedup-near-num-perm-neg",
        "dedup --near {pool} --out {tmp}/out --num-perm -8",
        "error",
        match="--num-perm",
    ),
    C(
        "dedup-near-threshold-inf",
        "dedup --near {pool} --out {tmp}/out --threshold inf",
        "error",
        match="--threshold",
    ),
    C(
        "dedup-buckets-fraction",
        "dedup --exact {pool} --out {tmp}/out --buckets 1.5",
        "error",
        match="--buckets",
    ),
    C(
        "dedup-exact-with-num-perm",
        "dedup --exact {pool} --out {tmp}/out --num-perm 64",
        "error",
        match="--near",
    ),
    C(
        "dedup-pool-is-a-parquet-file",
        "dedup --exact {tmp}/p.parquet --out {tmp}/out",
        "error",
        {"p.parquet": parquet_of([{"prompt": "x"}])},
        "p.parquet",
    ),
    C(
        "dedup-out-inside-the-pool",
        "dedup --exact {pool} --out {pool}/sub",
        "error",
        match="is inside the input",
    ),
    C(
        "dedup-pool-without-rows",
        "dedup --exact {tmp}/d --out {tmp}/out",
        "error",
        {"d/part-00000.parquet": empty_pool},
        "no rows",
        check=lambda tmp, out: _nothing_done(tmp / "out"),
    ),
    # ---- decontaminate -------------------------------------------------------------------
    C(
        "decon-train-without-rows",
        "decontaminate --train {tmp}/t --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"t/part-00000.parquet": empty_pool, "b.jsonl": GOOD},
        "no rows",
    ),
    C("decon-top-k-fraction", DECON_ARGS + " --top-k 2.5", "error", {"b.jsonl": GOOD}, "--top-k"),
    C(
        "decon-threshold-nan",
        DECON_ARGS + " --threshold nan",
        "error",
        {"b.jsonl": GOOD},
        "--threshold",
    ),
    C(
        "decon-against-folder-without-jsonl",
        "decontaminate --train {pool} --against {tmp}/b --out {tmp}/out",
        "error",
        {"b/notes.txt": "x"},
        "folder holds no .jsonl",
    ),
    C(
        "decon-against-only-latin1",
        DECON_ARGS,
        "error",
        {"b.jsonl": '{"prompt": "caf\xe9"}\n'.encode("latin-1")},
        "no conversations",
    ),
    C(
        "decon-embed-model-folder-missing",
        DECON_ARGS + " --embed-model {tmp}/no-model",
        "error",
        {"b.jsonl": GOOD},
        "no-model",
    ),
    C(
        "decon-out-holds-the-benchmark",
        "decontaminate --train {pool} --against {tmp}/out/b.jsonl --out {tmp}/out",
        "error",
        {"out/b.jsonl": GOOD},
        "holds the input",
    ),
    C(
        "decon-train-empty-folder",
        "decontaminate --train {tmp}/t --against {tmp}/b.jsonl --out {tmp}/out",
        "error",
        {"t/.keep": "", "b.jsonl": GOOD},
        "part-",
    ),
    # ---- build-evalset -------------------------------------------------------------------
    C(
        "evalset-recipe-semantic-threshold-text",
        EVALSET_ARGS + " --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "semantic_threshold: high\n"},
        "semantic_threshold",
    ),
    C(
        "evalset-recipe-hard-top-bool",
        EVALSET_ARGS + " --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "hard_top: yes\n"},
        "hard_top",
    ),
    C(
        "evalset-recipe-difficulty-judge-number",
        EVALSET_ARGS + " --recipe {tmp}/r.yaml",
        "error",
        {"p.jsonl": GOOD, "r.yaml": "difficulty_judge: 7\n"},
        "difficulty_judge",
    ),
    C(
        "evalset-recipe-is-a-folder",
        EVALSET_ARGS + " --recipe {tmp}/r",
        "error",
        {"p.jsonl": GOOD, "r/r.yaml": "clusters: 3\n"},
        "a folder, not a file",
    ),
    C(
        "evalset-semantic-threshold-nan",
        EVALSET_ARGS + " --semantic-threshold nan",
        "error",
        {"p.jsonl": GOOD},
        "semantic_threshold",
    ),
    C(
        "evalset-clusters-fraction",
        EVALSET_ARGS + " --clusters 2.5",
        "error",
        {"p.jsonl": GOOD},
        "--clusters",
    ),
    C("evalset-chunk-mb-0", EVALSET_ARGS + " --chunk-mb 0", "error", {"p.jsonl": GOOD}, "positive"),
    C(
        "evalset-embed-model-folder-missing",
        EVALSET_ARGS + " --embed-model {tmp}/no-model",
        "error",
        {"p.jsonl": GOOD},
        "no-model",
    ),
    C(
        "evalset-static-embed-model-folder-missing",
        EVALSET_ARGS + " --embed-model static:{tmp}/no-model",
        "error",
        {"p.jsonl": GOOD},
        "no-model",
    ),
    C(
        "evalset-out-is-the-pool",
        "build-evalset --pool {pool} --out {pool}",
        "error",
        match="holds the input",
    ),
    # ---- run -----------------------------------------------------------------------------
    C(
        "run-judge-eval-pairs-negative",
        "run --out {tmp}/out --judge-eval-pairs -1",
        "error",
        match="--judge-eval-pairs",
    ),
    C("run-chunk-mb-0", "run --out {tmp}/out --chunk-mb 0", "error", match="positive"),
    C(
        "run-pool-missing",
        "run --out {tmp}/out --pool {tmp}/nope.jsonl",
        "error",
        match="nope.jsonl",
    ),
    C(
        "run-pool-csv",
        "run --out {tmp}/out --pool {tmp}/p.csv",
        "error",
        {"p.csv": "prompt\nhi\n"},
        "format",
    ),
    C(
        "run-recipe-unknown-key",
        "run --out {tmp}/out --recipe {tmp}/r.yaml",
        "error",
        {"r.yaml": "clusterz: 3\n"},
        "recipe: unknown key 'clusterz' (did you mean 'clusters'?)",
    ),
    C(
        "run-roster-broken-yaml",
        "run --out {tmp}/out --roster {tmp}/r.yaml",
        "error",
        {"r.yaml": "models: [\n"},
        "YAML",
    ),
    C(
        "run-judge-roster-missing",
        "run --out {tmp}/out --judge-roster {tmp}/none.yaml",
        "error",
        match="none.yaml",
    ),
    C(
        "run-flywheel-unknown-key",
        "run --out {tmp}/out --flywheel {tmp}/f.yaml",
        "error",
        {"f.yaml": FW + "slicez: 3\n"},
        "slicez",
    ),
    C(
        "run-bootstrap-fraction",
        "run --out {tmp}/out --bootstrap 2.5",
        "error",
        match="--bootstrap",
    ),
    C(
        "run-out-holds-the-pool",
        "run --out {tmp}/out --pool {tmp}/out/p.jsonl",
        "error",
        {"out/p.jsonl": GOOD},
        "did not write (p.jsonl)",
        check=lambda tmp, out: _says((tmp / "out" / "p.jsonl").read_text(), GOOD),
    ),
    # ---- cluster flags: waits have a bound --------------------------------------------
    C(
        "cluster-wait-workers-nan",
        "ingest {tmp}/p.jsonl --out {tmp}/out --wait-workers nan",
        "error",
        {"p.jsonl": GOOD},
        "--wait-workers",
        cluster=False,
    ),
    C(
        "cluster-wait-workers-inf",
        "ingest {tmp}/p.jsonl --out {tmp}/out --wait-workers inf",
        "error",
        {"p.jsonl": GOOD},
        "--wait-workers",
        cluster=False,
    ),
    C(
        "cluster-wait-workers-text",
        "ingest {tmp}/p.jsonl --out {tmp}/out --wait-workers soon",
        "error",
        {"p.jsonl": GOOD},
        "--wait-workers",
        cluster=False,
    ),
    C(
        "cluster-resources-negative",
        "ingest {tmp}/p.jsonl --out {tmp}/out --worker-resources GPU=-1",
        "error",
        {"p.jsonl": GOOD},
        "GPU=-1",
        cluster=False,
    ),
    C(
        "cluster-resources-infinite",
        "ingest {tmp}/p.jsonl --out {tmp}/out --worker-resources GPU=inf",
        "error",
        {"p.jsonl": GOOD},
        "GPU=inf",
        cluster=False,
    ),
]


def _same_rows_as_pool(tmp: Path) -> None:
    import pandas as pd

    pool, out = _POOL["path"], tmp / "out"
    assert not list((out / "_quarantine").glob("*.parquet")), "stage files read as rows"
    assert sorted(pd.read_parquet(out).prompt_id) == sorted(pd.read_parquet(pool).prompt_id)


def _says(stdout: str, text: str) -> None:
    assert text in stdout, stdout


def _nothing_done(out: Path) -> None:
    """A step that failed left no result a rerun or the next step would take as done."""
    done = [p for p in out.rglob("*") if p.name in ("summary.json", "_manifest.json")]
    assert not done, done


def _dropped(tmp: Path, n: int) -> None:
    finite_board(tmp, "")
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert sum((summary.get("dropped") or {}).values()) == n, summary


_POOL: dict = {}


@pytest.fixture(scope="module")
def cluster():
    """One in-process cluster for the module; `connected` counts the clients it has seen."""
    from dask.distributed import LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Clients(SchedulerPlugin):
        seen = 0

        def add_client(self, scheduler, client):
            Clients.seen += 1

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as c:
        c.scheduler.add_plugin(Clients())
        yield c, Clients


@pytest.fixture(scope="module")
def pool(cluster, tmp_path_factory):
    """An ingested pool: 3 distinct prompts, one of them twice."""
    root = tmp_path_factory.mktemp("pool")
    (root / "p.jsonl").write_text(GOOD + jsonl({"prompt": "Name three primes."}, {"prompt": "z"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DASK_SCHEDULER_ADDRESS", cluster[0].scheduler_address)
        assert main(["ingest", str(root / "p.jsonl"), "--out", str(root / "pool")]) == 0
    _POOL["path"] = root / "pool"
    return root / "pool"


def _write(tmp: Path, name: str, content) -> None:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if content == "LLMFAO_400":
        content = llmfao_head(400)
    if content in ("WRONG_COLUMNS", "SFT_SHARD"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = {
            "WRONG_COLUMNS": {"text": ["a"]},
            "SFT_SHARD": {"prompt": ["a"], "completion": ["b"]},
        }
        pq.write_table(pa.table(rows[content]), path)
        return
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"case ran past {HANG_SECONDS} s")


def _counts(out: Path) -> tuple[int, int, int]:
    """Rows kept, quarantined and dropped (dedup's `_dropped/`), counted in the files."""
    import pyarrow.parquet as pq

    def rows(pattern):
        return sum(pq.read_metadata(p).num_rows for p in out.glob(pattern))

    return rows("part-*.parquet"), rows("_quarantine/*.parquet"), rows("_dropped/*.parquet")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, capsys, monkeypatch, cluster, pool):
    local, clients = cluster
    for name, content in case.files.items():
        _write(tmp_path, name, content)
    argv = case.argv.format(tmp=tmp_path, pool=pool, data=DATA, answers=ANSWERS).split()
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    # `arena elo` counts a few small files in this process unless a cluster is named:
    # its cases run that way, as a user's would.
    use_cluster = case.cluster and case.argv.split()[0] != "elo"
    if use_cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", local.scheduler_address)
    else:
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    seen = clients.seen
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    if case.expect == "error":
        assert code == 2, f"exit {code}\n{out}\n{err}"
        lines = [
            line
            for line in err.splitlines()
            # argparse's usage lines, and the notice of a bounded wait for a cluster
            if line.strip()
            and not line.startswith(("usage:", " ", "waiting up to ", "connected to "))
        ]
        assert len(lines) == 1 and lines[0].startswith("arena ") and ": error: " in lines[0], err
        assert "unrecognized arguments" not in err, err
        assert case.match in lines[0], lines[0]
        if use_cluster and not case.connects:
            assert clients.seen == seen, "connected to a cluster before failing"
        if case.check is not None:
            case.check(tmp_path, out)
        return
    assert code == 0, f"exit {code}\n{out}\n{err}"
    manifest_path = tmp_path / "out" / "_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        kept, quarantined, dropped = _counts(tmp_path / "out")
        # Nothing lost silently: every row read is kept, quarantined or dropped with a reason.
        assert manifest["rows_in"] == kept + quarantined + dropped, manifest
        assert (manifest["rows_out"], manifest["rows_rejected"]) == (kept, quarantined)
        if quarantined:
            import pandas as pd

            reasons = pd.read_parquet(tmp_path / "out" / "_quarantine").reason
            assert reasons.str.len().gt(0).all()
        if case.rows is not None:
            assert (kept, quarantined) == case.rows
    else:
        assert case.rows is None, "no manifest"
    if case.check is not None:
        case.check(tmp_path, out)


def test_overwrite_clears_only_what_the_project_wrote(tmp_path, capsys, monkeypatch, cluster):
    """A stage folder of this project with a user's file dropped in: --overwrite with another
    config refuses and names the file, leaving every byte; without it, it replaces the parts."""
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster[0].scheduler_address)
    (tmp_path / "p.jsonl").write_text(GOOD)
    out = tmp_path / "out"
    assert main(["ingest", str(tmp_path / "p.jsonl"), "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    argv = ["ingest", str(tmp_path / "p.jsonl"), "--out", str(out), "--max-chars", "9"]
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (out / "notes.txt").unlink()
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "_manifest.json").read_text())["rows_rejected"] == 2  # over 9 chars


def test_the_table_covers_every_command():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.argv.split()[0] for c in CASES}
    assert commands >= {
        "ingest",
        "dedup",
        "build-evalset",
        "decontaminate",
        "battle",
        "judge-eval",
        "elo",
        "train",
        "flywheel",
        "run",
    }
    safe = {c.argv.split()[0] for c in CASES if c.check is users_files_intact}
    assert safe >= commands


def test_a_jobs_own_outputs_are_not_foreign(tmp_path):
    """What a job wrote before (names and patterns: a flywheel's iteration-N) lets its rerun
    in; one file more is refused by name."""
    from core.errors import UserError
    from jobs.outputs import check_out, claim_out
    from pipeline.flows.flywheel import OUTPUTS

    out = tmp_path / "fw"
    claim_out(out, OUTPUTS)  # what the job does once its checks pass
    for name in ("iteration-1", "iteration-12", "slices", "_cache"):
        (out / name).mkdir(parents=True)
    (out / "flywheel.json").write_text("{}")
    check_out(out, writes=OUTPUTS)
    (out / "iteration-notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"did not write \(iteration-notes.txt\)"):
        check_out(out, writes=OUTPUTS)
