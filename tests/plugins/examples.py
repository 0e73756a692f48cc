"""The worked examples of docs/ARCHITECTURE.md, kept here so that tests prove they work."""

from __future__ import annotations

import numpy as np
from torch import nn

from amc.models import ModelSpec
from amc.policy import Policy
from amc.pruning.units import UnitGraph
from amc.search.base import Searcher, SearchSession, register_searcher


# -- a searcher ---------------------------------------------------------------------------------
@register_searcher
class SpareTheStem(Searcher):
    """Keeps the first unit whole and lets the environment spread the budget over the rest."""

    name = "spare-the-stem"
    description = "example: no pruning in the first unit, the rest spread evenly"

    def run(self, session: SearchSession) -> Policy | None:
        env = session.env()
        env.reset()
        for t in range(env.n):
            env.step(np.array([-1.0 if t == 0 else 0.0]))  # -1: none; 0: the even share
        session.record(env.last_episode)
        return None


# -- a cost model -------------------------------------------------------------------------------
class KeptChannels:
    """The number of channels kept in the prunable units (a toy cost)."""

    name = "channels"

    def __init__(self, graph: UnitGraph) -> None:
        self.base = float(graph.channels.sum())

    def cost(self, keep: np.ndarray) -> float:
        return float(np.sum(keep))


# -- a model ------------------------------------------------------------------------------------
class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.body(x))


TINY = ModelSpec("tinynet", TinyNet, unit_rule="inner", classifier="head", description="example user model")
