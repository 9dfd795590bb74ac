"""Preloaded by every worker of the embedded cluster (jobs.cluster.connect).

Ctrl-C in a terminal signals the whole foreground process group: the job and, beside it,
its embedded workers. The job handles it (it closes the cluster and says how to resume).
A worker that raised KeyboardInterrupt too would print a traceback above that line; here
it only quiets its shutdown warnings, as the job does.
"""

from __future__ import annotations

import signal

from jobs.cluster import quiet_shutdown


def _interrupted(signum, frame) -> None:
    quiet_shutdown()


def dask_setup(worker) -> None:
    try:
        signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the process's main thread: nothing to install
        pass
