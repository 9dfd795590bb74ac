"""vLLM's weight dtype warnings (a line per tensor of every engine loaded: 260 of the main
job's 270 lines) are demoted to DEBUG where the engine is made, on any worker."""

import importlib.util
import logging
from pathlib import Path

from arena_models.backends.vllm_backend import (
    WEIGHT_DTYPE_LOGGER,
    WEIGHT_DTYPE_WARNING,
    demote_weight_dtype_warnings,
)


def test_the_filter_sits_on_the_logger_vllm_warns_on():
    """Read from the installed vLLM's source (not imported: seconds): a rename there
    fails here rather than bringing the 260 lines back."""
    package = Path(importlib.util.find_spec("vllm").submodule_search_locations[0])
    module = WEIGHT_DTYPE_LOGGER.removeprefix("vllm.").replace(".", "/") + ".py"
    source = (package / module).read_text()
    assert "logger = init_logger(__name__)" in source
    assert f'"{WEIGHT_DTYPE_WARNING} into "' in source


def test_weight_dtype_warnings_reach_a_log_file_not_a_terminal():
    demote_weight_dtype_warnings()
    demote_weight_dtype_warnings()  # once per engine built: one filter all the same
    logger = logging.getLogger(WEIGHT_DTYPE_LOGGER)
    assert len(logger.filters) == 1
    terminal, log_file = Collect(logging.WARNING), Collect(logging.DEBUG)
    logger.addHandler(terminal)
    logger.addHandler(log_file)
    try:
        logger.warning(
            WEIGHT_DTYPE_WARNING + " into parameter with dtype %s",
            "model.embed_tokens.weight", "torch.float32", "torch.bfloat16",
        )  # fmt: skip
        logger.warning("Other warnings of vLLM keep their level")
    finally:
        logger.removeHandler(terminal)
        logger.removeHandler(log_file)
    assert [r.getMessage() for r in terminal.records] == ["Other warnings of vLLM keep their level"]
    assert [r.levelname for r in log_file.records] == ["DEBUG", "WARNING"]


class Collect(logging.Handler):
    def __init__(self, level: int):
        super().__init__(level)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
