"""A battle's prompts keep the eval set's `subset` and `cluster` (a Mix set's), so every
record can say where its prompt sits; a folder without them (an ingested pool) gives nulls,
and a cluster column that is not a number is one line."""

import pyarrow as pa
import pytest

from core.errors import UserError
from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from pipeline.battle.prompts import PLACED_PROMPTS, load_prompts

QUESTIONS = [[{"role": "user", "content": f"Question {n}?"}] for n in range(3)]


def _evalset(folder, **columns):
    rows = [
        {"prompt_id": prompt_id(m), "messages": m, "source": "t", "source_id": None,
         "source_file": "t", "source_line": n, "metadata": "{}"}
        for n, m in enumerate(QUESTIONS)
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, CONVERSATION)
    for name, values in columns.items():
        table = table.append_column(name, pa.array(values))
    write_parquet_atomic(table, folder / "part-0.parquet")
    return folder


def test_prompts_carry_subset_and_cluster(tmp_path):
    folder = _evalset(tmp_path, subset=["diverse", "hard", "both"], cluster=[4, 1, 4])
    prompts, _ = load_prompts(folder)
    assert prompts.schema.equals(PLACED_PROMPTS)
    placed = {r["prompt_id"]: (r["subset"], r["cluster"]) for r in prompts.to_pylist()}
    assert placed[prompt_id(QUESTIONS[1])] == ("hard", 1)


def test_a_pool_without_them_gives_nulls(tmp_path):
    prompts, _ = load_prompts(_evalset(tmp_path))
    assert prompts.column("subset").null_count == prompts.column("cluster").null_count == 3


def test_a_cluster_that_is_not_a_number_is_one_line(tmp_path):
    folder = _evalset(tmp_path, cluster=["a", "b", "c"])
    with pytest.raises(UserError, match="column cluster is string, expected int64"):
        load_prompts(folder)
