"""`arena ingest`: bad lines quarantined with their reason, unreadable files and an output of
another configuration as one-line errors."""

import json
from pathlib import Path

import pandas as pd
import pytest

from core.runner import run_stage
from jobs.cli import main
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestConfig, IngestPools

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
    if message is None:  # a .json file that is not an array is read as JSONL: a bad row
        assert code == 0
        return
    err = capsys.readouterr().err.strip()
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith("arena ingest: error:") and message in last and "Traceback" not in err


def test_output_of_another_config_is_refused(client, tmp_path, capsys):
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "x"}\n')
    out = tmp_path / "out"
    run_stage(IngestPools(expand_inputs([str(pool)]), out, IngestConfig()), client, progress=False)
    assert main(["ingest", str(pool), "--out", str(out), "--max-chars", "10"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"arena ingest: error: {out} holds output of a different ingest configuration;"
        " choose another --out or pass --overwrite"
    )
