"""Cost models: what a budget counts. A :class:`~amc.pruning.budget.Budget` takes any object
with a ``name``, the unpruned network's cost ``base`` and ``cost(keep)`` for kept channel
counts per unit; the environment's action bound bisects on it, so it must be cheap
(microseconds). MACs and parameters are built in; register others with
:func:`register_cost_model` (the measured-latency table plugs in here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from amc.errors import AmcError
from amc.pruning.units import UnitGraph

__all__ = ["CostModel", "MacsCost", "ParamsCost", "register_cost_model", "cost_model", "cost_model_names"]


@runtime_checkable
class CostModel(Protocol):
    """The cost of a network pruned to ``keep`` channels per unit; ``base`` is the unpruned
    network's cost, in the same unit (MACs, parameters, milliseconds...)."""

    name: str
    base: float

    def cost(self, keep: np.ndarray) -> float: ...


class MacsCost:
    """Multiply-accumulates of conv and linear layers for one image (exact, analytic)."""

    name = "macs"

    def __init__(self, graph: UnitGraph) -> None:
        self.graph, self.base = graph, graph.base_macs

    def cost(self, keep: np.ndarray) -> float:
        return self.graph.cost(keep)[0]


class ParamsCost:
    """Parameters of the pruned network (exact, analytic)."""

    name = "params"

    def __init__(self, graph: UnitGraph) -> None:
        self.graph, self.base = graph, graph.base_params

    def cost(self, keep: np.ndarray) -> float:
        return self.graph.cost(keep)[1]


_FACTORIES: dict[str, Callable[[UnitGraph], CostModel]] = {"macs": MacsCost, "params": ParamsCost}


def register_cost_model(name: str, factory: Callable[[UnitGraph], CostModel]) -> None:
    """Make ``Budget(graph, target, kind=name)`` use ``factory(graph)``."""
    _FACTORIES[name] = factory


def cost_model_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def cost_model(kind: str, graph: UnitGraph) -> CostModel:
    """The registered cost model ``kind`` for ``graph``."""
    if kind not in _FACTORIES:
        raise AmcError(f"unknown budget kind '{kind}': use one of {', '.join(_FACTORIES)}")
    return _FACTORIES[kind](graph)
