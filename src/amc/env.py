"""The AMC pruning environment (He et al. 2018, https://arxiv.org/abs/1802.03494).

After :func:`register` (nothing is registered on import):
``gymnasium.make("amc/Pruning-v0", budget=..., evaluate=...)``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from amc.pruning.budget import Budget
from amc.scoring import REWARDS, Episode, Evaluate, score

__all__ = ["PruningEnv", "REWARDS", "PROJECTIONS", "CENTRED", "ENV_ID", "register"]

ENV_ID = "amc/Pruning-v0"
PROJECTIONS = ("spread", "bounded", "amc")
CENTRED = ("spread", "bounded")  # projections whose action 0 is the (shifted) reference
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
    ``Box(-1, 1, (1,), float32)``. With ``projection="spread"`` (the default) action 0 asks for
    the uniform sparsity that the units still to come need to meet the budget, -1 for none and
    1 for ``max_sparsity``, linear in between: sparing one unit spreads its cost over all the
    later ones. Given a reference policy (:meth:`set_reference`), action 0 asks for the
    reference's sparsity instead, shifted alike over the units still to come so they meet the
    budget: the agent searches around the reference. ``projection="bounded"`` is ``spread`` with -1
    asking for the least sparsity the bound below allows instead of none, so near a tight budget
    the whole action range falls where the bound leaves a choice (with ``spread`` every action
    below a small negative one is raised to the bound alike). With ``projection="amc"`` (the
    paper's) the action maps linearly to ``[0, max_sparsity]``. Either way the sparsity is then
    raised to the least value that keeps the budget reachable if every later unit is pruned to
    ``max_sparsity`` (AMC's bound), so every episode's policy meets the budget. With ``fill``
    (default) the finished policy gets channels back, most-pruned unit first, while the budget
    holds: no budget is left unspent.

    ## Observation Space
    ``Box(0, 1, (11,), float32)``, AMC's layer embedding of the current unit, every feature
    scaled to [0, 1]: unit index, layer kind (conv 0, depthwise 0.5, linear 1), input
    channels, output channels, feature-map size, stride, kernel size, the unit's MACs (these
    eight min-max scaled over the units), MACs already removed and MACs of the units still to
    come (fractions of the base's MACs), and the previous action as a fraction of
    ``max_sparsity``.

    ## Rewards
    0 until the last step; then ``-error`` (``reward="acc"``, AMC's R_err) or
    ``-error * log(MACs)`` (``reward="acc-flops"``, R_FLOPs), ``error = 1 - accuracy``; or
    ``-loss``, the proxy's mean cross-entropy (``reward="loss"``: less noisy than top-1).

    ## Episode End
    Terminates after the last unit's step. Never truncated.

    ## Arguments
    - ``budget``: a :class:`~amc.pruning.budget.Budget` (units, target, max sparsity, rounding).
    - ``evaluate``: ``keep -> accuracy`` (fraction), or what the proxy measured (``accuracy`` and
      ``loss``, e.g. a :class:`~amc.proxy.ProxyResult`), where ``keep`` holds kept channel counts.
    - ``reward``: ``"acc"``, ``"acc-flops"`` or ``"loss"``.
    - ``projection``: ``"spread"``, ``"bounded"`` or ``"amc"`` (see Action Space).
    - ``fill``: spend what the policy leaves of the budget (see Action Space).

    The final step's ``info`` carries ``keep``, ``sparsity``, ``accuracy``, ``macs_ratio``,
    ``params_ratio`` and ``reward``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        budget: Budget,
        evaluate: Evaluate,
        reward: str = "acc",
        projection: str = "spread",
        fill: bool = True,
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
        self.budget, self.evaluate, self.reward_kind = budget, evaluate, reward
        self.projection, self.fill = projection, fill
        self._demos: list[np.ndarray] = []
        self._demo: np.ndarray | None = None
        self.reference = np.zeros(len(budget.graph.units))
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
        return np.asarray(np.clip(np.concatenate([self._static[t], dyn]), 0, 1), dtype=np.float32)

    def _restart(self) -> None:
        self._t = 0
        self._keep = self.budget.channels.copy()
        self._prev = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._restart()
        self._demo = self._demos.pop(0) if self._demos else None
        return self._obs(), {}

    def _centre(self) -> float:
        """The sparsity action 0 gives the current unit: the reference policy's, shifted alike
        over the units left so that they meet the budget (``spread``; with no reference, the
        uniform sparsity of the units left), or half the cap (``amc``)."""
        if self.projection == "amc":
            return self.budget.max_sparsity / 2
        return self.budget.rest_shifted(self._t, self._keep, self.reference)

    def set_reference(self, sparsity: np.ndarray) -> None:
        """Centre the ``spread`` projection on this per-unit policy (e.g. the best heuristic):
        all-zero actions then replay it, and the agent searches around it."""
        if self.projection not in CENTRED:
            raise ValueError(f"a reference policy needs projection in {CENTRED}, not {self.projection!r}")
        self.reference = np.clip(np.asarray(sparsity, dtype=np.float64), 0.0, self.budget.max_sparsity)

    def sparsity_for(self, action: float) -> float:
        """The sparsity the current unit gets for ``action`` (after the budget bound).

        ``amc``: ``[-1, 1] -> [0, max_sparsity]`` linearly. ``spread``: -1 -> 0, 0 -> the
        uniform sparsity the remaining units need, 1 -> ``max_sparsity``, linear in between.
        Either way raised to AMC's bound, so the budget stays reachable.
        """
        a = float(np.clip(action, -1.0, 1.0))
        cap, c, lo = self.budget.max_sparsity, self._centre(), self.budget.min_sparsity(self._t, self._keep)
        floor = self._floor(c, lo)
        wanted = c + a * (cap - c) if a >= 0 else c + a * (c - floor)
        return max(wanted, lo)

    def _floor(self, centre: float, bound: float) -> float:
        """The sparsity action -1 asks for: none (``spread``, ``amc``), or the least the bound allows
        (``bounded``, so the whole action range stays within what the budget leaves open)."""
        return min(bound, centre) if self.projection == "bounded" else 0.0

    def action_for(self, sparsity: float) -> float:
        """The action that asks for ``sparsity`` at the current unit (inverse of
        :meth:`sparsity_for` before the bound)."""
        cap, c = self.budget.max_sparsity, self._centre()
        if sparsity >= c:
            return float(np.clip((sparsity - c) / (cap - c), -1, 1)) if cap > c else 0.0
        floor = self._floor(c, self.budget.min_sparsity(self._t, self._keep)) if self.projection == "bounded" else 0.0
        return float(np.clip((sparsity - c) / (c - floor), -1, 1)) if c > floor else -1.0

    def add_demonstrations(self, policies: list[np.ndarray]) -> None:
        """Queue per-unit sparsity vectors: each following episode (one per vector) is steered
        by :meth:`demo_action` so that it replays that policy (e.g. uniform or global)."""
        self._demos.extend(np.asarray(p, dtype=np.float64) for p in policies)

    def demo_action(self) -> float | None:
        """The current step's action of the demonstration being replayed, or None."""
        if self._demo is None or self._t >= self.n:
            return None
        return self.action_for(float(self._demo[self._t]))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
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
        keep = self.budget.fill(self._keep) if self.fill else self._keep.copy()
        if not self.budget.fits(keep):  # a bug, not bad input: never score a policy over its budget
            raise AssertionError(
                f"episode policy is over the budget: {self.budget.ratio(keep) / self.budget.target:.4f}"
            )
        self.last_episode: Episode = score(self.budget, keep, self.evaluate, self.reward_kind)
        return self._obs(), float(self.last_episode.reward), True, False, self.last_episode.as_info()

    def actions_for(self, sparsity: np.ndarray) -> list[float]:
        """The actions that make an episode ask for ``sparsity`` per unit (nothing is
        evaluated; call it between episodes)."""
        self._restart()
        actions = []
        for t in range(self.n):
            actions.append(self.action_for(float(sparsity[t])))
            self._keep[t] = self.budget.keep(np.where(np.arange(self.n) == t, sparsity, 0.0))[t]
            self._t = t + 1
        self._restart()
        return actions


def register() -> None:
    """Register ``amc/Pruning-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="amc.env:PruningEnv")
