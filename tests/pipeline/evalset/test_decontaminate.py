"""Decontamination removes benchmark copies and paraphrase-like edits, and says why."""

import json

import pandas as pd
import pytest

from core.runner import run_stage
from pipeline.evalset.decontaminate import DecontaminationConfig
from pipeline.flows.decontaminate import decontaminate
from pipeline.ingest.readers import expand_inputs
from pipeline.ingest.stage import IngestPools


def paraphrase(text: str) -> str:
    """An edit a contaminated pool really holds: a polite prefix, changed case, a trailing note."""
    return f"Please answer this: {text.lower()} Thanks in advance!"


@pytest.mark.slow
def test_copies_and_paraphrases_are_removed(client, shared_data, tmp_path):
    bench_rows = [
        json.loads(line) for line in (shared_data / "prompts" / "vicuna_bench.jsonl").open()
    ][:15]
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in bench_rows))
    train = tmp_path / "train.jsonl"
    with train.open("w") as f:
        for line in (shared_data / "prompts" / "arena_hard_v0.1.jsonl").open():
            f.write(line)
        for r in bench_rows:
            f.write(json.dumps({"prompt": r["turns"][0], "tag": "copy"}) + "\n")
            f.write(json.dumps({"prompt": paraphrase(r["turns"][0]), "tag": "paraphrase"}) + "\n")
    run_stage(IngestPools(expand_inputs([str(train)]), tmp_path / "pool"), client, progress=False)

    manifest = decontaminate(
        client, tmp_path / "pool", [str(bench)], tmp_path / "out", DecontaminationConfig(top_k=2)
    )
    kept = pd.read_parquet(tmp_path / "out")
    tags = kept.metadata.map(lambda m: json.loads(m).get("tag"))
    assert not tags.isin(["copy", "paraphrase"]).any()
    assert manifest["rows_rejected"] == 30 and len(kept) == 500
    removed = pd.read_parquet(tmp_path / "out" / "_removed")
    assert len(removed) == 30 and removed.similarity.min() > 0.8
    assert removed.reason.str.contains("top-2 neighbour").all()
    assert set(removed.benchmark_text) == {r["turns"][0] for r in bench_rows}


def test_benchmarks_are_the_eval_set_of_a_build_folder_and_unreadable_rows_are_named(tmp_path):
    """--against a build-evalset (or main-job) folder given whole means its eval set (mix),
    never the build's own pool or dedup rows; benchmark rows that cannot be read are named."""
    import pyarrow as pa

    from core.parquet_io import write_parquet_atomic
    from core.schemas import CONVERSATION, prompt_id
    from pipeline.flows.decontaminate import benchmark_conversations

    def conversations(*texts):
        rows = []
        for i, text in enumerate(texts):
            messages = [{"role": "user", "content": text}]
            rows.append(
                {"prompt_id": prompt_id(messages), "messages": messages, "source": "t",
                 "source_id": None, "source_file": "t", "source_line": i, "metadata": "{}"}
            )  # fmt: skip
        return pa.Table.from_pylist(rows, CONVERSATION)

    for build in (tmp_path / "build", tmp_path / "run" / "evalset"):
        write_parquet_atomic(conversations("benchmark item"), build / "mix" / "part-00000.parquet")
        for other in ("pool", "dedup", "diverse"):
            write_parquet_atomic(conversations("a pool row"), build / other / "part-00000.parquet")
        (build / "report.md").write_text("# eval set\n")
    for given in (tmp_path / "build", tmp_path / "run"):
        _, texts, unreadable = benchmark_conversations([str(given)])
        assert (texts, unreadable) == (["benchmark item"], [])
    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"prompt": "fine"}\n{"prompt": 7}\n{"prompt": "also fine"}\n')
    _, texts, unreadable = benchmark_conversations([str(bench)])
    assert texts == ["fine", "also fine"]
    assert len(unreadable) == 1 and unreadable[0].startswith(f"{bench}:2: ")
