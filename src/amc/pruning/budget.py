"""Budgets: keep at most a fraction of the base network's MACs (or parameters).

``Budget`` turns per-unit sparsities into kept channel counts (with optional rounding to a
multiple) and answers the two questions every searcher asks: does this policy fit, and how
hard must unit ``t`` be pruned so that the budget stays reachable when every later unit is
pruned as hard as allowed (AMC's action bound)?
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amc.errors import AmcError
from amc.pruning.cost import CostModel, cost_model
from amc.pruning.units import UnitGraph

__all__ = ["Budget", "kept_channels"]


def kept_channels(sparsity: np.ndarray, channels: np.ndarray, round_to: int = 1) -> np.ndarray:
    """Kept channels per unit: ``round((1 - s) * n)``, at least 1, rounded up to a multiple of
    ``round_to`` (never above ``n``)."""
    s = np.clip(np.asarray(sparsity, dtype=np.float64), 0.0, 1.0)
    k = np.maximum(1, np.round((1.0 - s) * channels)).astype(np.int64)
    if round_to > 1:
        k = np.minimum(channels, np.ceil(k / round_to).astype(np.int64) * round_to)
    return np.asarray(k, dtype=np.int64)


@dataclass
class Budget:
    """``target``: the largest allowed fraction of the base's cost, in (0, 1]; the cost is
    ``cost`` if given, else the registered cost model ``kind`` (``macs``, ``params``, ...).

    ``max_sparsity``: no unit loses more than this fraction of its channels.
    ``round_to``: kept channel counts are rounded up to a multiple of this (1 = no rounding).
    """

    graph: UnitGraph
    target: float
    kind: str = "macs"
    max_sparsity: float = 0.8
    round_to: int = 1
    check_reachable: bool = True
    cost: CostModel | None = None

    def __post_init__(self) -> None:
        if self.cost is None:
            self.cost = cost_model(self.kind, self.graph)
        self.kind = self.cost.name
        self._cost: CostModel = self.cost
        if not (math.isfinite(self.target) and 0 < self.target <= 1):
            raise AmcError(f"budget {self.target} is outside (0, 1]: pass e.g. --flops 0.5 to keep half the MACs")
        if not 0 <= self.max_sparsity < 1:
            raise AmcError(f"max sparsity {self.max_sparsity} is outside [0, 1): pass e.g. --max-sparsity 0.8")
        if self.round_to < 1:
            raise AmcError(f"--round-to must be at least 1, got {self.round_to}")
        self.channels = self.graph.channels.astype(np.int64)
        self.min_keep = self.keep(np.full(len(self.channels), self.max_sparsity))
        smallest = self.ratio(self.min_keep)
        if self.check_reachable and smallest > self.target + 1e-12:
            raise AmcError(
                f"{self.kind} target {self.target:g} is unreachable with max sparsity {self.max_sparsity:g}"
                f" on these units: the smallest reachable is {math.ceil(smallest * 1000) / 1000:g}"
                " (raise the target or --max-sparsity)"
            )

    def __deepcopy__(self, memo: dict[int, object]) -> Budget:
        return self  # immutable once built

    def fill(self, keep: np.ndarray) -> np.ndarray:
        """Add channels back, one step at a time to the most-pruned unit, while the budget
        holds: rounding then wastes at most one step's worth of the budget."""
        keep = keep.copy()
        open_units = set(np.flatnonzero(keep < self.channels))
        while open_units:
            i = max(open_units, key=lambda u: (1 - keep[u] / self.channels[u], -u))
            trial = keep.copy()
            trial[i] = min(self.channels[i], keep[i] + self.round_to)
            if self.fits(trial):
                keep = trial
                if keep[i] >= self.channels[i]:
                    open_units.discard(i)
            else:
                open_units.discard(i)
        return keep

    def keep(self, sparsity: np.ndarray) -> np.ndarray:
        """Kept channels per unit for per-unit sparsities (fractions of channels removed)."""
        return kept_channels(sparsity, self.channels, self.round_to)

    def sparsity(self, keep: np.ndarray) -> np.ndarray:
        """The sparsities that give exactly ``keep`` channels back through :meth:`keep`."""
        return 1.0 - np.asarray(keep, dtype=np.float64) / self.channels

    def ratio(self, keep: np.ndarray) -> float:
        """Kept fraction of the base's cost for kept channel counts ``keep``."""
        return self._cost.cost(keep) / self._cost.base

    def ratios(self, keep: np.ndarray) -> tuple[float, float]:
        """``(macs_ratio, params_ratio)`` for ``keep``."""
        macs, params = self.graph.cost(keep)
        return macs / self.graph.base_macs, params / self.graph.base_params

    def fits(self, keep: np.ndarray) -> bool:
        return self.ratio(keep) <= self.target + 1e-12

    def rest_uniform(self, t: int, prefix_keep: np.ndarray) -> float:
        """The least sparsity that, given to unit ``t`` and every later unit alike, meets the
        budget with units before ``t`` kept as in ``prefix_keep`` (``max_sparsity`` if none
        does: the action bound then decides). The spread projection centres actions on it."""
        return self.rest_shifted(t, prefix_keep, np.zeros(len(self.channels)))

    def rest_shifted(self, t: int, prefix_keep: np.ndarray, reference: np.ndarray) -> float:
        """Unit ``t``'s sparsity when every unit from ``t`` on takes ``reference``'s sparsity
        shifted by the least common ``d`` (clipped to ``[0, max_sparsity]``) that meets the
        budget, units before ``t`` kept as in ``prefix_keep``: what a policy that followed
        ``reference`` so far needs next, with what the earlier units spent or saved spread
        evenly over the rest. A zero ``reference`` gives :meth:`rest_uniform`."""
        ref = np.asarray(reference, dtype=np.float64)
        keep = self.channels.copy()
        keep[:t] = prefix_keep[:t]

        def rest(d: float) -> np.ndarray:
            return np.clip(ref + d, 0.0, self.max_sparsity)

        lo, hi = -self.max_sparsity - float(ref.max(initial=0.0)), self.max_sparsity
        for _ in range(20):  # about 1e-6 of the range: far below one channel (runs at every step of an episode)
            mid = (lo + hi) / 2
            keep[t:] = self.keep(rest(mid))[t:]
            lo, hi = (lo, mid) if self.fits(keep) else (mid, hi)
        return float(rest(hi)[t])

    def min_sparsity(self, t: int, prefix_keep: np.ndarray) -> float:
        """The least sparsity unit ``t`` needs so that the budget is met even if every unit
        after ``t`` is pruned to ``max_sparsity``; ``prefix_keep`` holds units before ``t``."""
        keep = self.min_keep.copy()
        keep[:t] = prefix_keep[:t]
        lo, hi = int(self.min_keep[t]), int(self.channels[t])  # lo always fits (checked above)
        keep[t] = hi
        if self.fits(keep):
            return 0.0
        while hi - lo > 1:  # largest feasible kept count, by bisection (cost is monotone)
            mid = (lo + hi) // 2
            keep[t] = mid
            lo, hi = (mid, hi) if self.fits(keep) else (lo, mid)
        # down to a count keep() gives back: rounding a count between multiples up would break the budget
        keep[t] = max(int(self.min_keep[t]), lo // self.round_to * self.round_to)
        return float(self.sparsity(keep)[t])
