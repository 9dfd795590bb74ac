"""What the terminal and the --log-file receive at each verbosity (core/logs.py)."""

import logging
import warnings

import pytest

from core.logs import FILE_ENV, LEVEL_ENV, QUIET_ENVIRONMENT, configure


@pytest.fixture
def fresh_logging(monkeypatch):
    """configure() changes the root logger, distributed's, vLLM's and the environment: put
    them back. vLLM's starts as vLLM leaves it when an engine was built in this process
    earlier (its own handler and level, no propagation), as happens in a test session."""
    for key in (LEVEL_ENV, FILE_ENV, "VLLM_CONFIGURE_LOGGING", *QUIET_ENVIRONMENT):
        monkeypatch.setenv(key, "placeholder")  # remembered, restored after the test
        monkeypatch.delenv(key)
    root, distributed = logging.getLogger(), logging.getLogger("distributed")
    saved = (root.handlers[:], root.level, distributed.handlers[:], distributed.propagate)
    vllm = logging.getLogger("vllm")
    vllm_saved = (vllm.handlers[:], vllm.level, vllm.propagate)
    vllm.handlers[:], vllm.level, vllm.propagate = [logging.NullHandler()], logging.WARNING, False
    yield
    vllm.handlers[:], vllm.level, vllm.propagate = vllm_saved
    for handler in root.handlers:
        if getattr(handler, "arena", False):
            handler.close()
    root.handlers[:], root.level, distributed.handlers[:], distributed.propagate = saved
    logging.captureWarnings(False)


def emit_one_of_each() -> None:
    logging.getLogger("pipeline.flows.main").info("ingest: 3 rows read")
    logging.getLogger("pipeline.flows.main").debug("step detail")
    logging.getLogger("core.runner").warning("ingest: redoing part-0001")
    logging.getLogger("distributed.worker").info("Start worker")
    logging.getLogger("distributed.worker").warning("Worker is at 85% memory")
    logging.getLogger("distributed.nanny").warning("Worker process still alive after 4.0 s")
    logging.getLogger("vllm.platforms.cpu").warning("libtcmalloc is not found in LD_PRELOAD")
    logging.getLogger("vllm.engine").info("engine chatter")
    warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)


def test_default_shows_steps_and_warnings_that_matter(fresh_logging, capsys):
    configure("default")
    emit_one_of_each()
    assert capsys.readouterr().err.splitlines() == [
        "ingest: 3 rows read",
        "warning: ingest: redoing part-0001",
        "warning: distributed.worker: Worker is at 85% memory",
    ]


def test_quiet_shows_warnings_only_and_verbose_shows_detail(fresh_logging, capsys):
    configure("quiet")
    emit_one_of_each()
    assert "ingest: 3 rows read" not in capsys.readouterr().err
    configure("verbose")
    emit_one_of_each()
    shown = capsys.readouterr().err
    for line in ("ingest: 3 rows read", "debug: step detail", "vllm.engine: engine chatter"):
        assert line in shown


def test_log_file_receives_every_record_at_debug(fresh_logging, tmp_path, capsys):
    log_file = tmp_path / "arena.log"
    configure("quiet", str(log_file))
    emit_one_of_each()
    written = log_file.read_text()
    for text in ("step detail", "Start worker", "libtcmalloc", "engine chatter", "deprecation"):
        assert text in written
    assert "DEBUG pipeline.flows.main: step detail" in written
    # The processes the job starts (its workers, their trainers) find the same choice.
    import os

    assert os.environ[LEVEL_ENV] == "quiet" and os.environ[FILE_ENV] == str(log_file)
    configure("default")  # a second configure replaces the first: no file, one terminal
    logging.getLogger("pipeline.flows.main").info("once")
    assert capsys.readouterr().err.count("once") == 1 and "once" not in log_file.read_text()
