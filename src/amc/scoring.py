"""One scoring path: kept channels -> the episode's result (accuracy, cost ratios, reward).

The environment scores every episode with :func:`score`, and every baseline searcher scores
its policy with the same function, so a reward means the same thing whoever found the policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from amc.pruning.budget import Budget

__all__ = ["Episode", "RewardKind", "REWARDS", "reward_of", "score"]

RewardKind = Literal["acc", "acc-flops"]
REWARDS: tuple[str, ...] = ("acc", "acc-flops")


@dataclass(frozen=True)
class Episode:
    """A scored policy: kept channels per unit, their sparsities, held-out proxy ``accuracy``
    (fraction), MACs and parameter ratios to the base, and the reward."""

    keep: np.ndarray
    sparsity: np.ndarray
    accuracy: float
    macs_ratio: float
    params_ratio: float
    reward: float

    def as_info(self) -> dict[str, Any]:
        return {
            "keep": self.keep,
            "sparsity": self.sparsity,
            "accuracy": self.accuracy,
            "macs_ratio": self.macs_ratio,
            "params_ratio": self.params_ratio,
            "reward": self.reward,
        }


def reward_of(kind: str, accuracy: float, macs: float) -> float:
    """AMC's rewards: ``-error`` (``acc``, R_err) or ``-error * log(MACs)`` (``acc-flops``)."""
    error = 1.0 - accuracy
    if kind == "acc":
        return -error
    if kind == "acc-flops":
        return -error * math.log(macs)
    raise ValueError(f"reward must be one of {REWARDS}, got {kind!r}")


def score(budget: Budget, keep: np.ndarray, accuracy_of: Callable[[np.ndarray], float], reward: str) -> Episode:
    """Score kept channel counts ``keep``: ``accuracy_of(keep)`` on the proxy, costs from the
    budget's graph, and the reward."""
    keep = np.asarray(keep, dtype=np.int64).copy()
    accuracy = float(accuracy_of(keep))
    macs_ratio, params_ratio = budget.ratios(keep)
    return Episode(
        keep=keep,
        sparsity=budget.sparsity(keep),
        accuracy=accuracy,
        macs_ratio=macs_ratio,
        params_ratio=params_ratio,
        reward=reward_of(reward, accuracy, macs_ratio * budget.graph.base_macs),
    )
