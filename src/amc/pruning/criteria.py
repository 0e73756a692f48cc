"""Channel-selection criteria: which channels of a unit to keep.

Each criterion scores every channel of every unit once (scores do not depend on the policy),
so applying a policy is a top-k per unit. Higher score = more important.

- ``l1`` / ``l2``: the norm of the producing layer's filter (Li et al. 2017);
- ``taylor``: first-order Taylor expansion of the loss w.r.t. the unit's feature maps,
  ``|mean over positions of activation x gradient|`` averaged over held-out images
  (Molchanov et al. 2017);
- ``random``: a seeded random score, as a control.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amc.data import Split, batches
from amc.errors import AmcError
from amc.pruning.units import UnitGraph
from amc.runtime import Runtime

__all__ = ["CRITERIA", "channel_scores", "filter_norms"]

CRITERIA = ("l1", "l2", "taylor", "random")


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
    scores = [torch.zeros(u.channels, dtype=torch.float64) for u in graph.units]
    acts: dict[int, torch.Tensor] = {}

    def keep_activation(i):
        def hook(_m, _inp, out):
            out.retain_grad()
            acts[i] = out

        return hook

    hooks = [t.register_forward_hook(keep_activation(i)) for i, t in enumerate(targets)]
    model.eval()
    seen = 0
    try:
        for x, y in batches(split.subset(images), 100, device=runtime.device, channels_last=runtime.channels_last):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            for i, a in acts.items():
                dims = (2, 3) if a.dim() == 4 else ()
                a = a.detach() * a.grad
                contrib = a.mean(dim=dims) if dims else a
                scores[i] += contrib.abs().sum(0).double().cpu()
            seen += len(y)
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    return [(s / max(seen, 1)).numpy() for s in scores]


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
    """One score per channel per unit (higher = keep first)."""
    if criterion == "l1":
        return filter_norms(model, graph, 1)
    if criterion == "l2":
        return filter_norms(model, graph, 2)
    if criterion == "random":
        rng = np.random.default_rng(seed)
        return [rng.random(u.channels) for u in graph.units]
    if criterion == "taylor":
        if split is None or runtime is None:
            raise ValueError("the taylor criterion needs data and a runtime")
        return _taylor(model, graph, split, runtime, images)
    raise AmcError(f"unknown criterion '{criterion}': use one of {', '.join(CRITERIA)}")
