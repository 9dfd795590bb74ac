"""The CLI starts without heavy imports and turns user mistakes into one-line errors."""

import subprocess
import sys

import pytest

from core.errors import UserError
from jobs.cli import main
from jobs.cluster import parse_resources

HEAVY = (
    "dask",
    "distributed",
    "pyarrow",
    "pandas",
    "torch",
    "transformers",
    "faiss",
    "vllm",
    "matplotlib",
)


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom jobs.cli import build_parser\nbuild_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""


def test_help_lists_the_jobs():
    out = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("run", "ingest", "dedup"):
        assert command in out.stdout


def test_resources_parse_and_reject():
    assert parse_resources("GPU=1, MEM=2.5") == {"GPU": 1.0, "MEM": 2.5}
    assert parse_resources("") == {}
    for bad in ("GPU", "GPU=x", "=1"):
        with pytest.raises(UserError, match="is not NAME=AMOUNT"):
            parse_resources(bad)


def test_bad_resource_is_a_one_line_error(tmp_path, capsys):
    pool = tmp_path / "p.jsonl"
    pool.write_text('{"prompt": "x"}\n')
    assert (
        main(["ingest", str(pool), "--out", str(tmp_path / "o"), "--worker-resources", "GPU"]) == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("arena ingest: error:")


def test_embedded_cluster_gets_the_resources_the_roster_needs():
    import argparse

    from jobs.cluster import embedded_resources
    from pipeline.flows.battle import prepare_battle

    setup = prepare_battle("demo", judge="smollm2-judge", judge_roster="judges")
    args = argparse.Namespace(worker_resources=None)
    embedded_resources(args, setup.resources)
    assert args.worker_resources == "GPU=1"
    chosen = argparse.Namespace(worker_resources="GPU=2")
    embedded_resources(chosen, {"GPU": 1.0})
    assert chosen.worker_resources == "GPU=2"
