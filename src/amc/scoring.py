"""One scoring path: kept channels -> the episode's result (accuracy, cost ratios, reward).

The environment scores every episode with :func:`score`, and every baseline searcher scores
its policy with the same function, so a reward means the same thing whoever found the policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from amc.pruning.budget import Budget

__all__ = ["Episode", "Evaluate", "Measured", "RewardKind", "REWARDS", "reward_of", "score"]

RewardKind = Literal["acc", "acc-flops", "loss"]
REWARDS: tuple[str, ...] = ("acc", "acc-flops", "loss")


@dataclass(frozen=True)
class Episode:
    """A scored policy: kept channels per unit, their sparsities, held-out proxy ``accuracy``
    (fraction), MACs and parameter ratios to the base, the reward, and the proxy's ``loss``."""

    keep: np.ndarray
    sparsity: np.ndarray
    accuracy: float
    macs_ratio: float
    params_ratio: float
    reward: float
    loss: float = math.nan  # mean cross-entropy on the proxy's images, when the proxy gives it

    def as_info(self) -> dict[str, Any]:
        return {
            "keep": self.keep,
            "sparsity": self.sparsity,
            "accuracy": self.accuracy,
            "macs_ratio": self.macs_ratio,
            "params_ratio": self.params_ratio,
            "reward": self.reward,
        }


def reward_of(kind: str, accuracy: float, macs: float, loss: float = math.nan) -> float:
    """AMC's rewards: ``-error`` (``acc``, R_err) or ``-error * log(MACs)`` (``acc-flops``); or
    ``-loss``, the mean cross-entropy on the proxy's images (``loss``): a continuous score, less
    noisy than top-1 on the same images."""
    error = 1.0 - accuracy
    if kind == "acc":
        return -error
    if kind == "acc-flops":
        return -error * math.log(macs)
    if kind == "loss":
        if math.isnan(loss):
            raise ValueError("the loss reward needs a proxy that measures the loss")
        return -loss
    raise ValueError(f"reward must be one of {REWARDS}, got {kind!r}")


class Measured(Protocol):
    """What a proxy measures of a policy (:class:`~amc.proxy.ProxyResult` is one)."""

    @property
    def accuracy(self) -> float: ...

    @property
    def loss(self) -> float: ...


Evaluate = Callable[[np.ndarray], "float | Measured"]  # keep -> accuracy, or accuracy and loss


def score(budget: Budget, keep: np.ndarray, accuracy_of: Evaluate, reward: str) -> Episode:
    """Score kept channel counts ``keep``: ``accuracy_of(keep)`` on the proxy (an accuracy, or
    what the proxy measured: accuracy and loss), costs from the budget's graph, and the reward."""
    keep = np.asarray(keep, dtype=np.int64).copy()
    measured = accuracy_of(keep)
    if isinstance(measured, (int, float)):
        accuracy, loss = float(measured), math.nan
    else:
        accuracy, loss = float(measured.accuracy), float(measured.loss)
    macs_ratio, params_ratio = budget.ratios(keep)
    return Episode(
        keep=keep,
        sparsity=budget.sparsity(keep),
        accuracy=accuracy,
        macs_ratio=macs_ratio,
        params_ratio=params_ratio,
        reward=reward_of(reward, accuracy, macs_ratio * budget.graph.base_macs, loss),
        loss=loss,
    )
