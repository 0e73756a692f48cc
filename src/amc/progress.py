"""Progress of long work: a tqdm bar on a terminal, and without one (nohup, CI, a service
worker's log) a plain line at a steady pace (every ``every_percent`` of the work or every
``every_seconds``), carrying the same figures the bar shows."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """``update(n, **figures)`` advances by ``n`` and shows ``figures`` (e.g. best accuracy)."""

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        initial: int = 0,
        enabled: bool = True,
        every_percent: float = 5.0,
        every_seconds: float = 60.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream) if self.tty else None
        self._step = max(1, int(total * every_percent / 100))
        self._seconds = every_seconds
        self._start = self._last_time = time.monotonic()
        self._last_n = self._initial = initial
        self.figures: dict[str, Any] = {}

    def update(self, n: int = 1, **figures: Any) -> None:
        self.n += n
        self.figures.update(figures)
        if self.bar is not None:
            self.bar.update(n)
            if figures:
                self.bar.set_postfix(self.figures)
            return
        now = time.monotonic()
        due = self.n - self._last_n >= self._step or now - self._last_time >= self._seconds or self.n >= self.total
        if self.enabled and due:
            self._line(now)

    def _line(self, now: float) -> None:
        done = self.n / max(self.total, 1)
        elapsed = now - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        extra = "".join(f" {k}={v}" for k, v in self.figures.items())
        print(
            f"{self.desc}: {self.n}/{self.total} {self.unit} ({done:.0%}) {elapsed:.0f}s elapsed, "
            f"~{left:.0f}s left{extra}",
            file=self.stream,
            flush=True,
        )
        self._last_n, self._last_time = self.n, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
