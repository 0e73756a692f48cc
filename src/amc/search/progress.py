"""A search's progress: episodes done, best reward and best held-out proxy accuracy so far."""

from __future__ import annotations

import math

from amc.progress import Progress as _Progress

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, done: int, desc: str, enabled: bool) -> None:
        self._p = _Progress(total, desc, "episode", initial=done, enabled=enabled)
        self.best = -math.inf
        self.best_acc = float("nan")

    def update(self, reward: float, accuracy: float) -> None:
        if reward > self.best:
            self.best, self.best_acc = reward, accuracy
        self._p.update(1, best_reward=f"{self.best:.4f}", best_acc=f"{self.best_acc:.2%}")

    def close(self) -> None:
        self._p.close()
