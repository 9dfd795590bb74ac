"""The CLI starts without heavy imports and turns user mistakes into one-line errors."""

import subprocess
import sys

import pytest

from core.config_files import parse_resources
from core.errors import UserError
from jobs.cli import build_parser, main

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


def test_embedded_cluster_gives_the_roster_s_resources_to_one_worker():
    import argparse

    from jobs.cluster import embedded_resources
    from pipeline.flows.battle import prepare_battle

    setup = prepare_battle("demo", judge="smollm2-judge", judge_roster="judges")
    default = argparse.Namespace(worker_resources="")
    # One engine a machine: the first worker holds the GPU slot, the others none.
    assert embedded_resources(default, setup.resources, 2) == [{"GPU": 1.0}, {}]
    chosen = argparse.Namespace(worker_resources="GPU=2")
    assert embedded_resources(chosen, {"GPU": 1.0}, 2) == [{"GPU": 2.0}, {"GPU": 2.0}]


def _worker_name() -> str:
    from distributed import get_worker

    return get_worker().name


def test_the_embedded_cluster_holds_one_model_slot_and_cpu_tasks_use_every_worker():
    from core.submit import run_tasks
    from jobs.cluster import connect

    args = build_parser("ingest").parse_args(["ingest", "x", "--out", "o", "--workers", "2"])
    with connect(args, {"GPU": 1.0}) as client:
        held = [w["resources"] for w in client.scheduler_info(n_workers=-1)["workers"].values()]
        assert sorted(held, key=len) == [{}, {"GPU": 1.0}]
        model = run_tasks(
            client, _worker_name, [()] * 4, desc="m", resources={"GPU": 1}, progress=False
        )
        assert len(set(model)) == 1  # one engine: every model task on the slot's worker
        # CPU tasks long enough that both workers take some: none is pinned off the slot.
        spread = run_tasks(client, _sleep_then_name, [(0.3,)] * 8, desc="c", progress=False)
        assert set(spread) == {0, 1}


def _sleep_then_name(seconds: float):
    import time

    time.sleep(seconds)
    return _worker_name()


def test_a_true_default_bool_can_be_turned_off():
    import argparse

    from jobs.options import add_config_arguments, config_from_args
    from pipeline.battle.config import BattleConfig

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, BattleConfig)

    def parsed(*argv):
        return config_from_args(BattleConfig, parser.parse_args(argv))

    assert parsed().answerable_only is True and parsed().rejudge_errors is False
    assert parsed("--no-answerable-only").answerable_only is False
    assert parsed("--answerable-only", "--rejudge-errors").rejudge_errors is True
    with pytest.raises(SystemExit):  # a False default stays a plain switch
        parser.parse_args(["--no-rejudge-errors"])


def test_the_semantic_threshold_flag_reaches_the_recipe():
    from pipeline.flows.evalset import Recipe

    args = build_parser("build-evalset").parse_args(
        ["build-evalset", "--pool", "p", "--out", "o", "--semantic-threshold", "0.9"]
    )
    assert args.semantic_threshold == 0.9
    assert (
        Recipe.load(None, {"semantic_threshold": args.semantic_threshold}).semantic_threshold == 0.9
    )


def test_judging_mistakes_stop_before_any_cluster(tmp_path, capsys):
    evalset = tmp_path / "e"  # never read: the mistake is found first
    cases = [
        (["battle", "--roster", "demo", "--judge", "gpt-4-0314", "--judge-scoring", "expected"],
         "judge gpt-4-0314: expected scores need token probabilities"),
        (["run", "--judge-eval-pairs", "-1"], "--judge-eval-pairs and --bootstrap must be >= 0"),
    ]  # fmt: skip
    for argv, message in cases:
        if argv[0] == "battle":
            argv = [*argv, "--evalset", str(evalset)]
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
