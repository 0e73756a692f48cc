"""Torch-Pruning's own pruners as heuristic policies.

``tp-global-l1`` and ``tp-local-l1`` run Torch-Pruning's ``MetaPruner`` with group L1 magnitude
importance (one threshold over every group, or the same ratio in every layer) on the search's
units, the other layers left alone, its pruning ratio bisected until the budget holds. The
channel counts it leaves in each unit are the policy (amc then cuts the lowest-norm channels
itself), topped up like every heuristic. On ResNet-18 they beat amc's own heuristics
(``bench/results/policy_quality-resnet18-f05-default2.json``), so DDPG can start from them:
``--reference uniform global sensitivity tp-global-l1 tp-local-l1``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from amc.pruning.units import Member
from amc.search.context import SearchContext

__all__ = ["tp_keep", "BISECTIONS"]

BISECTIONS = 12  # ratio steps: 2^-12 of the largest sparsity, below one channel on every zoo model


def tp_keep(ctx: SearchContext, global_pruning: bool) -> np.ndarray:
    """Kept channels per unit of Torch-Pruning's L1 pruner at the largest ratio within the budget."""
    b = ctx.budget
    lo, hi = 0.0, b.max_sparsity
    best = b.keep(np.full(len(ctx.graph.units), b.max_sparsity))  # the cap: reachable by construction
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        keep = _pruned_counts(ctx, mid, global_pruning)
        if b.fits(keep):
            best, hi = keep, mid
        else:
            lo = mid
    return b.fill(best)


def _pruned_counts(ctx: SearchContext, ratio: float, global_pruning: bool) -> np.ndarray:
    import torch_pruning as tp

    net = copy.deepcopy(ctx.base.model).float().cpu().to(memory_format=torch.contiguous_format).eval()
    mods = dict(net.named_modules())
    outs = [_out_module(u.members, mods) for u in ctx.graph.units]
    unit_outs = set(outs)
    ignored = [m for n, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in unit_outs]
    before = [_width(mods[n]) for n in outs]
    pruner = tp.pruner.MetaPruner(
        net,
        torch.zeros(1, *ctx.graph.input_size),
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        global_pruning=global_pruning,
        pruning_ratio=ratio,
        max_pruning_ratio=ctx.budget.max_sparsity,
        ignored_layers=ignored,
    )
    pruner.step()
    channels = ctx.graph.channels
    kept = [round(c * _width(mods[n]) / w) for c, n, w in zip(channels, outs, before)]  # grouped units scale
    floor = np.ceil(channels * (1 - ctx.budget.max_sparsity)).astype(np.int64)
    return np.clip(np.asarray(kept, dtype=np.int64), floor, channels)


def _out_module(members: tuple[Member, ...], mods: dict[str, nn.Module]) -> str:
    """The name of the first convolution or linear layer whose output channels are the unit's."""
    for m in members:
        if m.dim == "out" and m.param is None and isinstance(mods.get(m.module), (nn.Conv2d, nn.Linear)):
            return m.module
    raise ValueError("a unit without a convolution or linear layer producing its channels")


def _width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    raise TypeError(f"{type(module).__name__} is not a convolution or linear layer")
