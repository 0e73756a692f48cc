"""Physically remove channels: a policy's kept channel counts -> a smaller ``nn.Module``.

The base model is never changed: each call deep-copies it and slices the copy's layers with
Torch-Pruning's own per-layer handlers, using the index maps recorded once in the
:class:`~amc.pruning.units.UnitGraph` (no dependency graph is rebuilt per call: this is the
search's hot path). ``mask_channels`` zeroes the same channels instead, for equivalence tests.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from amc.pruning.units import UnitGraph

__all__ = ["kept_indices", "prune_model", "mask_channels"]


def kept_indices(scores: list[np.ndarray], keep: np.ndarray) -> list[np.ndarray]:
    """For each unit, the ``keep[i]`` highest-scoring channels, in ascending channel order."""
    return [np.sort(np.argsort(-s, kind="stable")[: int(k)]) for s, k in zip(scores, keep)]


def _removed(unit_channels: int, kept: np.ndarray) -> np.ndarray:
    mask = np.ones(unit_channels, dtype=bool)
    mask[kept] = False
    return np.flatnonzero(mask)


def prune_model(
    base: nn.Module, graph: UnitGraph, kept: list[np.ndarray], weights: dict[str, torch.Tensor] | None = None
) -> nn.Module:
    """A pruned deep copy of ``base`` keeping channels ``kept[i]`` of unit ``i``.

    ``weights`` replaces full-size weights of named layers before slicing (reconstruction).
    """
    model = copy.deepcopy(base)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, w in (weights or {}).items():
            modules[name].weight.copy_(w)
    # every layer is cut once, with the union of what all units remove from it: indices are the
    # unpruned layer's, so cutting unit by unit would shift the offsets of a concatenation's
    # later inputs (and of a layer that several units feed)
    cuts: dict[tuple[str, str, str | None], tuple[Callable[[Any, list[int]], Any], set[int]]] = {}
    for unit, keep_idx in zip(graph.units, kept):
        removed = _removed(unit.channels, keep_idx)
        if len(removed) == 0:
            continue
        for mem in unit.members:
            _, idxs = cuts.setdefault((mem.module, mem.dim, mem.param), (mem.handler, set()))
            idxs.update(int(i) for i in mem.index_map[removed].reshape(-1))
    for (name, _dim, param), (handler, idxs) in cuts.items():
        if param is None:
            handler(modules[name], sorted(idxs))
        else:  # a bare parameter: the handler returns its slice, which replaces it
            setattr(modules[name], param, handler(getattr(modules[name], param), sorted(idxs)))
    return model


@torch.no_grad()
def mask_channels(base: nn.Module, graph: UnitGraph, kept: list[np.ndarray]) -> nn.Module:
    """A copy of ``base`` with removed channels zeroed instead of cut (outputs match the cut
    network: every removed channel is zero after its last normalisation layer)."""
    model = copy.deepcopy(base)
    modules = dict(model.named_modules())
    for unit, keep_idx in zip(graph.units, kept):
        removed = _removed(unit.channels, keep_idx)
        for mem in unit.members:
            if mem.dim != "out" or mem.param is not None:
                continue
            m = modules[mem.module]
            idx = torch.as_tensor(mem.index_map[removed].reshape(-1), dtype=torch.long)
            for p in (getattr(m, "weight", None), getattr(m, "bias", None)):
                if isinstance(p, torch.Tensor):
                    p.index_fill_(0, idx.to(p.device), 0.0)
    return model
