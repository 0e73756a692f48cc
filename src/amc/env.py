"""The AMC pruning environment (He et al. 2018, https://arxiv.org/abs/1802.03494).

Registered as ``amc/Pruning-v0``: ``gymnasium.make("amc/Pruning-v0", budget=..., evaluate=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from amc.pruning.budget import Budget

__all__ = ["PruningEnv", "REWARDS", "ENV_ID"]

ENV_ID = "amc/Pruning-v0"
REWARDS = ("acc", "acc-flops")
LAYER_KINDS = {"conv": 0.0, "dwconv": 0.5, "linear": 1.0}
FEATURES = (
    "index",
    "kind",
    "in_channels",
    "out_channels",
    "feature_map",
    "stride",
    "kernel",
    "macs",
    "reduced",
    "rest",
    "previous_action",
)


class PruningEnv(gym.Env):
    """Choose, unit by unit, how much of a network's channels to prune under a budget.

    ## Description
    One episode walks through the prunable units of a network in network order. At each step
    the agent picks the sparsity (fraction of channels removed) of the current unit. When the
    last unit is decided, the policy is applied for real (channels cut out, BatchNorm
    recalibrated) and scored by ``evaluate`` on the held-out split.

    ## Action Space
    ``Box(-1, 1, (1,), float32)``, mapped linearly to a sparsity in ``[0, max_sparsity]``. The
    sparsity is then raised to the least value that keeps the budget reachable if every later
    unit is pruned to ``max_sparsity`` (AMC's bound), so every episode's policy meets the
    budget.

    ## Observation Space
    ``Box(0, 1, (11,), float32)``, AMC's layer embedding of the current unit, every feature
    scaled to [0, 1]: unit index, layer kind (conv 0, depthwise 0.5, linear 1), input
    channels, output channels, feature-map size, stride, kernel size, the unit's MACs (these
    eight min-max scaled over the units), MACs already removed and MACs of the units still to
    come (fractions of the base's MACs), and the previous action as a fraction of
    ``max_sparsity``.

    ## Rewards
    0 until the last step; then ``-error`` (``reward="acc"``, AMC's R_err) or
    ``-error * log(MACs)`` (``reward="acc-flops"``, R_FLOPs), ``error = 1 - accuracy``.

    ## Episode End
    Terminates after the last unit's step. Never truncated.

    ## Arguments
    - ``budget``: a :class:`~amc.pruning.budget.Budget` (units, target, max sparsity, rounding).
    - ``evaluate``: ``keep -> accuracy`` (fraction), where ``keep`` holds kept channel counts.
    - ``reward``: ``"acc"`` or ``"acc-flops"``.

    The final step's ``info`` carries ``keep``, ``sparsity``, ``accuracy``, ``macs_ratio``,
    ``params_ratio`` and ``reward``.
    """

    metadata = {"render_modes": []}

    def __init__(self, budget: Budget, evaluate: Callable[[np.ndarray], float], reward: str = "acc") -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        self.budget, self.evaluate, self.reward_kind = budget, evaluate, reward
        self.units = budget.graph.units
        self.n = len(self.units)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = spaces.Box(0.0, 1.0, (len(FEATURES),), dtype=np.float32)
        self._static = self._static_features()
        unit_macs = budget.graph.unit_macs()
        self._rest = (unit_macs.sum() - np.cumsum(unit_macs)) / budget.graph.base_macs
        self._t = 0
        self._keep = budget.channels.copy()
        self._prev = 0.0

    def _static_features(self) -> np.ndarray:
        rows = []
        for u in self.units:
            L = u.layer
            rows.append(
                [
                    u.index,
                    LAYER_KINDS[L.kind],
                    L.in_channels,
                    L.out_channels,
                    L.in_hw[0],
                    L.stride[0],
                    L.kernel[0],
                    L.macs,
                ]
            )
        x = np.asarray(rows, dtype=np.float64)
        span = x.max(0) - x.min(0)
        return np.where(span > 0, (x - x.min(0)) / np.where(span > 0, span, 1), 0.0)

    def _obs(self) -> np.ndarray:
        t = min(self._t, self.n - 1)
        macs_now = self.budget.graph.cost(self._keep)[0]
        reduced = 1.0 - macs_now / self.budget.graph.base_macs
        dyn = [reduced, self._rest[t], self._prev]
        return np.clip(np.concatenate([self._static[t], dyn]), 0, 1).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._keep = self.budget.channels.copy()
        self._prev = 0.0
        return self._obs(), {}

    def sparsity_for(self, action: float) -> float:
        """The sparsity the current unit gets for ``action`` (after the budget bound)."""
        a = float(np.clip(action, -1.0, 1.0))
        wanted = (a + 1.0) / 2.0 * self.budget.max_sparsity
        return max(wanted, self.budget.min_sparsity(self._t, self._keep))

    def step(self, action):
        if self._t >= self.n:
            raise RuntimeError("step() called after the episode ended: call reset()")
        s = self.sparsity_for(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        sparsity = np.zeros(self.n)
        sparsity[self._t] = s
        self._keep[self._t] = self.budget.keep(sparsity)[self._t]
        self._prev = s / self.budget.max_sparsity if self.budget.max_sparsity > 0 else 0.0
        self._t += 1
        if self._t < self.n:
            return self._obs(), 0.0, False, False, {}
        keep = self._keep.copy()
        accuracy = float(self.evaluate(keep))
        macs_ratio, params_ratio = self.budget.ratios(keep)
        error = 1.0 - accuracy
        reward = -error if self.reward_kind == "acc" else -error * math.log(macs_ratio * self.budget.graph.base_macs)
        info = {
            "keep": keep,
            "sparsity": self.budget.sparsity(keep),
            "accuracy": accuracy,
            "macs_ratio": macs_ratio,
            "params_ratio": params_ratio,
            "reward": reward,
        }
        return self._obs(), float(reward), True, False, info


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="amc.env:PruningEnv")
