"""`arena dedup --near` on a real LocalCluster: real AlpacaEval prompts with near-copies planted."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.runner import run_stage
from jobs.cli import main
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools

BASE = range(116, 140)  # AlpacaEval rows (0-based) with no near-copies among them
# (AlpacaEval row of the original, its edit, the pool file that gets the edit)
EDITS = [
    (137, lambda t: t + " Thanks!", "b"),  # in the second input part
    (126, lambda t: t + " Thanks.", "b"),
    (136, lambda t: t + " Please.", "a"),  # later in the same part as its original
]
# Row 124 rewritten: a near-copy by topic, far below the Jaccard threshold.
FAR_EDIT = "Can you give any tips on how to grill a juicy, well-done burger at home?"


@pytest.fixture(scope="module")
def planted(client, shared_data, tmp_path_factory):
    """Two pool files -> an ingested folder of two parts; returns (pool, originals, copies)."""
    root = tmp_path_factory.mktemp("near")
    lines = (shared_data / "prompts" / "alpaca_eval.jsonl").read_text().splitlines()
    rows = {i: json.loads(lines[i]) for i in BASE}
    files = {"a": [rows[i] for i in BASE], "b": [{"instruction": FAR_EDIT}]}
    originals, copies = [], []
    for line, edit, where in EDITS:
        files[where].append({"instruction": edit(rows[line]["instruction"])})
        originals.append(rows[line]["instruction"])
        copies.append(files[where][-1]["instruction"])
    for name, records in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (root / f"{name}_pool.jsonl").write_text(text)
    files = expand_inputs([str(root / "a_pool.jsonl"), str(root / "b_pool.jsonl")])
    run_stage(IngestPools(files, root / "pool"), client, progress=False)
    return root / "pool", originals, copies


def _cli(client, *args):
    return main(["dedup", *map(str, args), "--scheduler-address", client.scheduler.address])


def _text(messages) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


def test_near_copies_dropped_clustered_and_rerun_is_a_no_op(client, planted, tmp_path, capsys):
    pool, originals, copies = planted
    out = tmp_path / "near"
    assert _cli(client, "--near", pool, "--out", out) == 0
    assert "near dedup:" in capsys.readouterr().out

    rows_in = pd.read_parquet(pool)
    kept = pd.read_parquet(out)
    texts = set(kept.messages.map(_text))
    assert len(kept) == len(rows_in) - len(copies)
    assert texts.isdisjoint(copies) and set(originals) <= texts
    assert FAR_EDIT in texts  # an edit below the threshold stays
    # Same schema as the input, one part per input part: a conversation folder.
    parts_in = sorted(p.name for p in pool.glob("part-*.parquet"))
    assert sorted(p.name for p in out.glob("part-*.parquet")) == parts_in
    for name in parts_in:
        assert pq.read_schema(out / name).equals(pq.read_schema(pool / name))

    manifest = json.loads((out / "_manifest.json").read_text())
    assert (manifest["rows_in"], manifest["rows_out"]) == (len(rows_in), len(kept))
    assert manifest["summary"]["dropped"] == len(copies)
    assert manifest["summary"]["clusters"] == len(copies)

    clusters = pd.read_parquet(out / "_clusters")
    assert len(clusters) == 2 * len(copies) and clusters.cluster.nunique() == len(copies)
    by_id = rows_in.set_index("prompt_id")
    for _, members in clusters.groupby("cluster"):
        first = members[members.kept]
        assert len(first) == 1
        original = first.iloc[0]
        copy = members[~members.kept].iloc[0]
        assert _text(by_id.loc[original.prompt_id, "messages"]) in originals
        assert _text(by_id.loc[copy.prompt_id, "messages"]) in copies
        assert copy.kept_id == original.prompt_id and copy.prompt_id not in set(kept.prompt_id)
        assert (copy.source_file, copy.source_line) > (original.source_file, original.source_line)
        assert copy.preview and _text(by_id.loc[copy.prompt_id, "messages"]).startswith(
            copy.preview
        )
        assert 0.8 <= copy.similarity < 1
    assert not (out / "_signatures").exists()  # work files go once done

    # A rerun of the finished output changes nothing and does no work.
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert _cli(client, "--near", pool, "--out", out) == 0
    again = json.loads((out / "_manifest.json").read_text())
    assert again["content_hash"] == manifest["content_hash"]
    assert again["resumed_parts"] == again["parts"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")} == before
    assert not (out / "_signatures").exists()

    # Another configuration is refused without --overwrite, and replaces it with it.
    capsys.readouterr()
    assert _cli(client, "--near", pool, "--out", out, "--threshold", 0.99) == 2
    assert "different near-dedup configuration" in capsys.readouterr().err
    assert _cli(client, "--near", pool, "--out", out, "--threshold", 0.99, "--overwrite") == 0
    strict = json.loads((out / "_manifest.json").read_text())
    assert strict["config"]["threshold"] == 0.99 and strict["summary"]["dropped"] < len(copies)


def test_near_output_feeds_exact_dedup_unchanged_schema(client, planted, tmp_path):
    pool, _, copies = planted
    assert _cli(client, "--near", pool, "--out", tmp_path / "near", "--num-perm", 64) == 0
    assert _cli(client, "--exact", tmp_path / "near", "--out", tmp_path / "exact") == 0
    assert len(pd.read_parquet(tmp_path / "exact")) == len(pd.read_parquet(pool)) - len(copies)


@pytest.mark.parametrize("bad", ["missing", "empty", "wrong-columns", "threshold", "ngram"])
def test_bad_input_is_a_one_line_error(client, planted, tmp_path, capsys, bad):
    pool, _, _ = planted
    args = ["--near", tmp_path / bad, "--out", tmp_path / "out"]
    if bad == "empty":
        (tmp_path / bad).mkdir()
    elif bad == "wrong-columns":
        table = pa.table({"prompt_id": ["x"], "text": ["hello"]})
        (tmp_path / bad).mkdir()
        pq.write_table(table, tmp_path / bad / "part-00000.parquet")
    elif bad == "threshold":
        args = ["--near", pool, "--out", tmp_path / "out", "--threshold", 1.5]
    elif bad == "ngram":
        args = ["--near", pool, "--out", tmp_path / "out", "--ngram", 0]
    assert _cli(client, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arena dedup: error:") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_exact_and_near_are_exclusive(client, planted, tmp_path, capsys):
    pool, _, _ = planted
    with pytest.raises(SystemExit) as exit_:
        _cli(client, "--exact", "--near", pool, "--out", tmp_path / "o")
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
