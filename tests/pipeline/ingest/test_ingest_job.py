"""`arena ingest` on real pools, bad lines, other formats and unreadable files."""

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.runner import run_stage
from jobs.cli import main
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestConfig, IngestPools


def ingest(client, paths, out, **config):
    stage = IngestPools(expand_inputs([str(p) for p in paths]), out, IngestConfig(**config))
    return run_stage(stage, client, progress=False)


def test_real_prompt_pools(client, shared_data, tmp_path):
    files = sorted((shared_data / "prompts").glob("*.jsonl"))
    manifest = ingest(client, files, tmp_path / "pool")
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_rejected"]) == (2234, 2234, 0)
    rows = pd.read_parquet(tmp_path / "pool")
    assert len(rows) == 2234
    assert rows.groupby("source").size().to_dict() == {
        "alpaca_eval": 805,
        "arena_hard_v0.1": 500,
        "arena_hard_v2.0": 750,
        "llmfao_prompts": 19,
        "mt_bench": 80,
        "vicuna_bench": 80,
    }
    mt = rows[rows.source == "mt_bench"]
    assert all(len(m) == 2 for m in mt.messages)  # multi-turn stays multi-turn
    assert json.loads(mt.iloc[0].metadata)["category"] == "writing"
    assert not (tmp_path / "pool" / "_quarantine").exists()


BAD_LINES = {
    2: ("{not json", "malformed JSON"),
    4: ('{"prompt": ""}', "empty text in prompt"),
    5: ('{"title": "no text here"}', "no text field"),
    7: ('{"prompt": 42}', "wrong type: prompt is int"),
    9: (b'{"prompt": "caf\xe9 latin-1"}', "invalid UTF-8"),
    10: ('{"prompt": "' + "x" * 600 + '"}', "too long"),
    12: ('["a", "list"]', "not a JSON object"),
    13: ('{"turns": ["ok", 3]}', "wrong type: turns[1] is int"),
}


def write_with_bad_lines(path: Path, total: int = 14) -> set[int]:
    good = set()
    with open(path, "wb") as f:
        for line in range(1, total + 1):
            if line in BAD_LINES:
                raw = BAD_LINES[line][0]
                f.write(raw if isinstance(raw, bytes) else raw.encode())
            else:
                f.write(json.dumps({"id": line, "prompt": f"good prompt {line}"}).encode())
                good.add(line)
            f.write(b"\n")
        f.write(b"\n")  # a trailing blank line is not a row
    return good


def test_bad_lines_are_quarantined_with_reason(client, tmp_path, capsys):
    pool = tmp_path / "bad.jsonl"
    good = write_with_bad_lines(pool)
    code = main(["ingest", str(pool), "--out", str(tmp_path / "out"), "--max-chars", "500"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "14 rows read, 6 kept, 8 quarantined" in printed
    kept = pd.read_parquet(tmp_path / "out")
    assert set(kept.source_line) == good
    quarantine = pd.read_parquet(tmp_path / "out" / "_quarantine").set_index("source_line")
    assert set(quarantine.index) == set(BAD_LINES)
    for line, (_, reason) in BAD_LINES.items():
        assert reason in quarantine.loc[line, "reason"], (line, quarantine.loc[line, "reason"])
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["rows_rejected"] == 8 and manifest["rows_out"] == 6


def test_json_array_and_parquet_inputs(client, tmp_path):
    array = tmp_path / "pool.json"
    array.write_text(json.dumps([{"instruction": "a"}, {"instruction": ""}, {"text": "c"}]))
    table = pa.table({"prompt": ["p1", "p2", None], "uid": ["x", "y", "z"]})
    pq.write_table(table, tmp_path / "pool.parquet", row_group_size=2)
    manifest = ingest(client, [array, tmp_path / "pool.parquet"], tmp_path / "out")
    assert (manifest["rows_in"], manifest["rows_out"], manifest["rows_rejected"]) == (6, 4, 2)
    rows = pd.read_parquet(tmp_path / "out").sort_values(["source_file", "source_line"])
    assert list(rows.source_line) == [1, 3, 1, 2]
    assert list(rows.source_id)[2:] == ["x", "y"]
    quarantine = pd.read_parquet(tmp_path / "out" / "_quarantine")
    assert sorted(quarantine.reason) == [
        "empty text in instruction",
        "wrong type: prompt is NoneType, expected string",
    ]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jsonl", None, "no such file"),
        ("broken.json", '[{"prompt": 1', "malformed JSON array"),
        ("object.json", '{"prompt": "x"', None),
        ("corrupt.parquet", "not parquet at all", "not a readable Parquet file"),
        ("pool.csv", "prompt\nx\n", "unknown format .csv"),
    ],
)
def test_unreadable_file_is_one_line_error(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code = main(["ingest", str(path), "--out", str(tmp_path / "out")])
    if (
        message is None
    ):  # a .json file that is not an array is read as JSONL: a bad row, not a bad file
        assert code == 0
        return
    err = capsys.readouterr().err.strip()
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith("arena ingest: error:") and message in last and "Traceback" not in err


def test_output_of_another_config_is_refused(client, tmp_path):
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "x"}\n')
    ingest(client, [pool], tmp_path / "out")
    assert main(["ingest", str(pool), "--out", str(tmp_path / "out"), "--max-chars", "10"]) == 2
