"""How the `arena` CLI sets up logging, for itself and for the processes a job starts.

Library code logs through `logging.getLogger(__name__)` and never prints. `configure`,
called once by the CLI, sends records to two places:
- the terminal (stderr): the project's records from the chosen level (INFO: one line
  per step; DEBUG with -v; WARNING with -q), other libraries' from WARNING (INFO with
  -v; never their WARNINGs from the chatty ones in QUIET_LIBRARIES, nor Python's
  FutureWarnings and DeprecationWarnings of their code, nor the UNIMPORTANT ones);
- the --log-file, if given: every record at DEBUG, every library's, appended.
It writes its choice into the environment, so the job's embedded Dask workers (their
preload, jobs/embedded_worker.py) and the trainer processes they start
(`configure_from_environment`) log by the same rules into the same file.
"""

from __future__ import annotations

import logging
import os
import sys

# Loggers whose records are the project's own (their top package).
OURS = frozenset({"core", "arena_models", "pipeline", "jobs", "eval_sets", "bench"})
LEVELS = {"quiet": logging.WARNING, "default": logging.INFO, "verbose": logging.DEBUG}
# Libraries whose warnings are about settings we chose (vLLM's CPU engine, compiled
# kernels, LD_PRELOAD advice) or internals (Python warnings of their code): a record from
# them reaches the terminal from ERROR at the default level; all of it goes to the file.
QUIET_LIBRARIES = ("vllm", "py.warnings")
# Other libraries' warnings that say nothing a user acts on: (logger, how the text starts).
# Shown with -v; always in the file.
UNIMPORTANT = (
    # closing the embedded cluster: a worker holding a vLLM engine takes longer to stop
    ("distributed.nanny", "Worker process still alive after"),
)
# The environment that carries the choice to the processes a job starts.
LEVEL_ENV = "ARENA_LOG_LEVEL"
FILE_ENV = "ARENA_LOG_FILE"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Set (unless already set) in the environment of a job not run with -v, for the processes it
# starts: libraries draw no bars of their own in workers (Hugging Face's loading weights
# and preparing datasets, trl's reference log-probabilities; the project's bars pass
# `disable` themselves, so TQDM_DISABLE leaves them be), and torch's C++ core prints no
# warnings of its own (vLLM's NUMA binding on CPU).
QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TORCH_CPP_LOG_LEVEL": "ERROR",
}


def _top(name: str) -> str:
    return name.split(".", 1)[0]


class TerminalFilter(logging.Filter):
    """What the terminal shows: the project's records from `level`, other libraries'
    from WARNING (INFO at DEBUG), the quiet libraries' from ERROR (all at DEBUG), never
    the UNIMPORTANT ones but at DEBUG."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def threshold(self, name: str) -> int:
        if _top(name) in OURS:
            return self.level
        if self.level <= logging.DEBUG:
            return logging.INFO
        if any(name == q or name.startswith(q + ".") for q in QUIET_LIBRARIES):
            return logging.ERROR
        return max(self.level, logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.level > logging.DEBUG and any(
            record.name == name and str(record.msg).startswith(text) for name, text in UNIMPORTANT
        ):
            return False
        return record.levelno >= self.threshold(record.name)


class Stderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record (a test's capture, a redirect)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class TerminalFormatter(logging.Formatter):
    """A step's line as it is; anything else says its level, and another library's
    record its logger, so a user can tell whose warning it is."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        ours = _top(record.name) in OURS
        if ours and record.levelno == logging.INFO:
            return message
        where = "" if ours else f"{record.name}: "
        return f"{record.levelname.lower()}: {where}{message}"


def configure(level: str = "default", log_file: str | None = None) -> None:
    """Set up this process's logging (replacing an earlier `configure`) and record the
    choice in the environment for the processes it starts."""
    os.environ[LEVEL_ENV] = level
    if log_file:
        log_file = os.path.abspath(log_file)  # workers may start elsewhere
        os.environ[FILE_ENV] = log_file
    else:
        os.environ.pop(FILE_ENV, None)
    # vLLM then leaves its records to ours (it installs its own handler otherwise).
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    if level != "verbose":
        for key, value in QUIET_ENVIRONMENT.items():
            os.environ.setdefault(key, value)

    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "arena", False)]:
        root.removeHandler(handler)
        handler.close()
    terminal = Stderr()
    terminal.addFilter(TerminalFilter(LEVELS[level]))
    terminal.setFormatter(TerminalFormatter())
    handlers = [terminal]
    if log_file:
        written = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        written.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(written)
    for handler in handlers:
        handler.arena = True
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if log_file else min(LEVELS[level], logging.INFO))
    logging.captureWarnings(True)
    # Dask's distributed installs its own stderr handler when it is imported before this
    # (a worker process), and vLLM its own handler, level and no propagation when it was
    # configured before (an engine built in this process): their records come here too.
    # Imported later, distributed sees the root's handlers and vLLM the environment above.
    for name in ("distributed", "vllm"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
    logging.getLogger("vllm").setLevel(logging.NOTSET)  # the filters above decide


def configure_from_environment() -> None:
    """In a process a configured job started (an embedded worker, a trainer): the job's
    choice; elsewhere (a worker of someone else's cluster) nothing changes."""
    level = os.environ.get(LEVEL_ENV)
    if level in LEVELS:
        configure(level, os.environ.get(FILE_ENV))
