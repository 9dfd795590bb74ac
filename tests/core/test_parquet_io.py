"""Reading a slice of a Parquet part: the same rows as a full read, from the row groups only;
and the record of what the atomic writers published (a task's completion marker uses it)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.parquet_io import read_rows, recording_writes, write_json_atomic, write_parquet_atomic


@pytest.mark.parametrize("row_group_size", [None, 7, 1000])
def test_read_rows_equals_a_sliced_full_read(tmp_path, row_group_size):
    table = pa.table({"i": list(range(100)), "text": [f"row {i}" for i in range(100)]})
    path = tmp_path / "part-0.parquet"
    write_parquet_atomic(table, path, row_group_size=row_group_size)
    whole = pq.read_table(path)
    for start, rows in ((0, 100), (0, 7), (5, 9), (14, 7), (93, 50), (99, 1), (100, 5), (0, 0)):
        assert read_rows(path, start, rows).equals(whole.slice(start, rows)), (start, rows)


def test_recording_writes_lists_each_published_file_once(tmp_path):
    table = pa.table({"i": [1, 2]})
    write_parquet_atomic(table, tmp_path / "before.parquet")  # outside: not recorded
    with recording_writes() as written:
        write_parquet_atomic(table, tmp_path / "part-0.parquet")
        write_parquet_atomic(table, tmp_path / "_side" / "part-0.parquet")
        write_parquet_atomic(table, tmp_path / "part-0.parquet")  # rewritten: listed once
        write_json_atomic({"a": 1}, tmp_path / "x.json")
    write_json_atomic({"a": 1}, tmp_path / "after.json")
    assert list(written) == [
        tmp_path / "part-0.parquet",
        tmp_path / "_side" / "part-0.parquet",
        tmp_path / "x.json",
    ]
