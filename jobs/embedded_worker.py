"""Preloaded by every worker of the embedded cluster (jobs.cluster.connect).

Ctrl-C in a terminal signals the whole foreground process group: the job and, beside it,
its embedded workers. The job handles it (it closes the cluster and says how to resume).
A worker that raised KeyboardInterrupt too would print a traceback above that line; here
it only quiets its shutdown warnings, as the job does.

It also logs as the job does (core.logs): the same terminal rules, the same --log-file.
"""

from __future__ import annotations

import signal

from core.logs import configure_from_environment
from jobs.cluster import quiet_shutdown


def _interrupted(signum, frame) -> None:
    quiet_shutdown()


def dask_setup(worker) -> None:
    configure_from_environment()
    try:
        signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the process's main thread: nothing to install
        pass
