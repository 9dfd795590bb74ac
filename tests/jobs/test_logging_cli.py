"""-v / -q / --log-file on every command, and the embedded workers logging as the job does:
vLLM runs in them, where the job's own configuration would not reach by itself."""

import logging

import pytest

from arena_models.backends.vllm_backend import (
    WEIGHT_DTYPE_LOGGER,
    WEIGHT_DTYPE_WARNING,
    demote_weight_dtype_warnings,
)
from core.logs import FILE_ENV, LEVEL_ENV, QUIET_ENVIRONMENT, configure
from jobs.cli import build_parser, main
from jobs.cluster import connect


@pytest.fixture
def fresh_logging(monkeypatch):
    """main() configures the root logger and the environment: put them back."""
    for key in (LEVEL_ENV, FILE_ENV, "VLLM_CONFIGURE_LOGGING", *QUIET_ENVIRONMENT):
        monkeypatch.setenv(key, "placeholder")  # remembered, restored after the test
        monkeypatch.delenv(key)
    root, distributed = logging.getLogger(), logging.getLogger("distributed")
    saved = (root.handlers[:], root.level, distributed.handlers[:], distributed.propagate)
    yield
    for handler in root.handlers:
        if getattr(handler, "arena", False):
            handler.close()
    root.handlers[:], root.level, distributed.handlers[:], distributed.propagate = saved
    logging.captureWarnings(False)


def test_every_command_takes_the_logging_flags():
    for command in (["run"], ["ingest", "p.jsonl", "--out", "o"], ["elo", "b", "--out", "o"]):
        args = build_parser(command[0]).parse_args([*command, "-q", "--log-file", "x.log"])
        assert (args.log_level, args.log_file) == ("quiet", "x.log")
    assert build_parser("run").parse_args(["run", "-v"]).log_level == "verbose"
    with pytest.raises(SystemExit):
        build_parser("run").parse_args(["run", "-v", "-q"])


def test_a_user_error_stays_one_line_and_its_traceback_goes_to_the_file(
    fresh_logging, tmp_path, capsys
):
    log_file = tmp_path / "arena.log"
    code = main(["ingest", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"),
                 "--log-file", str(log_file)])  # fmt: skip
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("arena ingest: error: ") and "missing.jsonl" in line
    assert "Traceback" in log_file.read_text()


def test_embedded_workers_log_by_the_job_rules_into_its_file(fresh_logging, tmp_path, capfd):
    log_file = tmp_path / "arena.log"
    configure("default", str(log_file))
    args = build_parser("ingest").parse_args(["ingest", "x", "--out", "o", "--workers", "1"])
    with connect(args) as client:
        vllm_logger = logging.getLogger(WEIGHT_DTYPE_LOGGER)
        client.run(demote_weight_dtype_warnings)  # as building an engine does
        client.run(vllm_logger.warning, WEIGHT_DTYPE_WARNING, "lm_head.weight", "float32")
        client.run(logging.getLogger("vllm.platforms.cpu").warning, "libiomp is not found")
        client.run(logging.getLogger("pipeline.flywheel.trainers").debug, "sft step 1")
        client.run(logging.getLogger("pipeline.flywheel.state").warning, "redoing pool")
        worker_pid = next(iter(client.run(lambda: __import__("os").getpid()).values()))
    terminal = capfd.readouterr().err
    assert "warning: redoing pool" in terminal
    for noise in ("lm_head.weight", "libiomp", "sft step 1"):
        assert noise not in terminal
    written = [x for x in log_file.read_text().splitlines() if f" {worker_pid} " in x]
    assert any("DEBUG vllm.model_executor.models.utils: Attempted" in x for x in written)
    for text in ("libiomp is not found", "DEBUG pipeline.flywheel.trainers: sft step 1"):
        assert any(text in x for x in written), text
