"""Channel-selection criteria: which channels of a unit to keep.

Each criterion scores every channel of every unit once (scores do not depend on the policy),
so applying a policy is a top-k per unit. Higher score = more important.

- ``l1`` / ``l2``: the norm of the producing layer's filter (Li et al. 2017);
- ``group-l1``: the L1 norm of every weight the channel's removal takes away, averaged over the
  unit's coupled layers (the producer's filter, its BatchNorm's scale, the consumers' input
  slices, depthwise filters), as Torch-Pruning's ``GroupMagnitudeImportance(p=1)`` ranks a group;
- ``taylor``: first-order Taylor expansion of the loss w.r.t. the unit's feature maps,
  ``|mean over positions of activation x gradient|`` averaged over held-out images
  (Molchanov et al. 2017);
- ``random``: a seeded random score, as a control.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amc.data import Split, batches
from amc.errors import AmcError
from amc.pruning.units import Member, UnitGraph
from amc.runtime import Runtime

__all__ = [
    "Criterion",
    "ScoreData",
    "register_criterion",
    "criterion_names",
    "get_criterion",
    "channel_scores",
    "filter_norms",
    "group_norms",
]


def filter_norms(model: nn.Module, graph: UnitGraph, p: int = 1, per_weight: bool = False) -> list[np.ndarray]:
    """Lp norm of each unit's producing filters; ``per_weight`` divides by the filter's size."""
    modules = dict(model.named_modules())
    out = []
    for unit in graph.units:
        w = modules[unit.name].weight.detach().float().flatten(1)
        norms = w.abs().sum(1) if p == 1 else w.pow(2).sum(1).sqrt()
        if per_weight:
            norms = norms / w.shape[1]
        out.append(norms.cpu().numpy())
    return graph.fold(out)


def _channel_l1(module: nn.Module, member: Member) -> torch.Tensor | None:
    """L1 of each of ``module``'s channels along the member's dimension (None: no weight there)."""
    if member.param is not None:
        p: torch.Tensor = getattr(module, member.param).detach().float()
        dim = int(member.handler.keywords["dim"]) if isinstance(member.handler, functools.partial) else 0
        return p.abs().movedim(dim, 0).flatten(1).sum(1)
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        return None
    w = w.detach().float()
    if w.dim() == 1:  # BatchNorm / LayerNorm scales
        return w.abs()
    if isinstance(module, nn.Conv2d) and module.groups > 1 and member.dim == "in":
        if module.groups == module.in_channels:  # depthwise: in and out channels are one
            return w.abs().flatten(1).sum(1)
        per_out = module.out_channels // module.groups
        # in-channel j of group g meets out-channels g*per_out ... (g+1)*per_out-1 at position j % per_in
        blocks = w.abs().sum((2, 3)).reshape(module.groups, per_out, -1).sum(1)  # (groups, per_in)
        return blocks.flatten()
    return (w.abs().transpose(0, 1) if member.dim == "in" else w.abs()).flatten(1).sum(1)


def group_norms(model: nn.Module, graph: UnitGraph) -> list[np.ndarray]:
    """Per unit channel, the mean over the unit's coupled layers of the L1 norm of the weights its
    removal takes away (a member that maps k layer channels to a unit channel counts all k)."""
    modules = dict(model.named_modules())
    out = []
    for unit in graph.units:
        total = np.zeros(unit.channels)
        counted = 0
        for member in unit.members:
            l1 = _channel_l1(modules[member.module], member)
            if l1 is None:
                continue
            total += l1.cpu().numpy()[member.index_map].sum(1)
            counted += 1
        out.append(total / max(counted, 1))
    return out


def _taylor(model: nn.Module, graph: UnitGraph, split: Split, runtime: Runtime, images: int) -> list[np.ndarray]:
    modules = dict(model.named_modules())
    # the first BatchNorm on the unit's output if there is one, else the producing layer
    targets = []
    for unit in graph.units:
        bn = next(
            (
                m.module
                for m in unit.members
                if m.dim == "out" and isinstance(modules[m.module], nn.modules.batchnorm._BatchNorm)
            ),
            unit.name,
        )
        targets.append(modules[bn])
    scores = [torch.zeros(u.layer.out_channels, dtype=torch.float64) for u in graph.units]
    acts: dict[int, torch.Tensor] = {}

    def keep_activation(i: int) -> Callable[..., None]:
        def hook(_m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            out.retain_grad()
            acts[i] = out

        return hook

    hooks = [t.register_forward_hook(keep_activation(i)) for i, t in enumerate(targets)]
    model.eval()
    seen = 0
    try:
        for x, y in batches(split.subset(images), 100, device=runtime.device, channels_last=runtime.channels_last):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
            for i, a in acts.items():
                dims = (2, 3) if a.dim() == 4 else ()
                assert a.grad is not None
                a = a.detach() * a.grad
                contrib = a.mean(dim=dims) if dims else a
                scores[i] += contrib.abs().sum(0).double().cpu()
            seen += len(y)
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    return graph.fold([(s / max(seen, 1)).numpy() for s in scores])


class Criterion(ABC):
    """Scores every channel of every unit once (higher = keep first). Subclasses set ``name``
    (the ``--criterion`` value) and ``needs_data`` (True: ``split`` and ``runtime`` are given)."""

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False

    @abstractmethod
    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class ScoreData:
    """What a data-driven criterion may use: images from ``split`` (never the test split), the
    runtime, how many images, and a seed."""

    split: Split | None = None
    runtime: Runtime | None = None
    images: int = 1000
    seed: int = 0


_CRITERIA: dict[str, Criterion] = {}


def register_criterion(cls: type[Criterion]) -> type[Criterion]:
    """Class decorator: make ``cls`` available as ``--criterion cls.name``."""
    _CRITERIA[cls.name] = cls()
    return cls


def criterion_names() -> tuple[str, ...]:
    return tuple(_CRITERIA)


def get_criterion(name: str) -> Criterion:
    if name not in _CRITERIA:
        raise AmcError(f"--criterion: unknown criterion '{name}': use one of {', '.join(_CRITERIA)}")
    return _CRITERIA[name]


@register_criterion
class L1(Criterion):
    name = "l1"

    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]:
        return filter_norms(model, graph, 1)


@register_criterion
class L2(Criterion):
    name = "l2"

    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]:
        return filter_norms(model, graph, 2)


@register_criterion
class GroupL1(Criterion):
    name = "group-l1"

    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]:
        return group_norms(model, graph)


@register_criterion
class Taylor(Criterion):
    name = "taylor"
    needs_data = True

    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]:
        if data.split is None or data.runtime is None:
            raise ValueError("the taylor criterion needs data and a runtime")
        return _taylor(model, graph, data.split, data.runtime, data.images)


@register_criterion
class Random(Criterion):
    name = "random"

    def scores(self, model: nn.Module, graph: UnitGraph, data: ScoreData) -> list[np.ndarray]:
        rng = np.random.default_rng(data.seed)
        return [rng.random(u.channels) for u in graph.units]


def channel_scores(
    model: nn.Module,
    graph: UnitGraph,
    criterion: str,
    *,
    split: Split | None = None,
    runtime: Runtime | None = None,
    images: int = 1000,
    seed: int = 0,
) -> list[np.ndarray]:
    """One score per channel per unit (higher = keep first), by the registered ``criterion``."""
    return get_criterion(criterion).scores(model, graph, ScoreData(split, runtime, images, seed))
