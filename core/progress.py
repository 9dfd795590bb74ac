"""A progress bar that appears only for work that lasts: short work stays silent and never
imports tqdm (a tenth of a second, which `arena elo` on a small file would notice)."""

from __future__ import annotations

import sys
import time


class LazyBar:
    """`update(n)` like tqdm's; the tqdm bar is made once the work is projected to take more
    than `after_s` seconds, from the pace of the updates so far."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, after_s: float = 1.0):
        self.total, self.desc, self.enabled, self.after_s = total, desc, enabled, after_s
        self.done, self.start, self.bar = 0, time.perf_counter(), None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        elapsed = time.perf_counter() - self.start
        projected = elapsed / max(self.done, 1) * self.total
        if self.enabled and self.done < self.total and projected > self.after_s:
            from tqdm import tqdm

            # disable given, so a TQDM_DISABLE meant for libraries' bars (core/logs.py) does not apply
            self.bar = tqdm(
                total=self.total, initial=self.done, desc=self.desc, file=sys.stderr, disable=False
            )

    def __enter__(self) -> LazyBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
