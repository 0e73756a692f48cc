"""Prunable units: groups of channels that must be removed together, found once per model with
Torch-Pruning's ``DependencyGraph``, and the analytic cost (MACs, parameters) of keeping any
number of channels in each.

A unit is named after the layer that produces its channels (``layer1.0.conv1``). Its members
are every coupled layer slice: the producer's output channels, BatchNorms, depthwise
convolutions, and the consumers' input channels, each with the map from the unit's channel
index to that layer's channel indices (identity, concatenation offsets, or flatten blocks).

Unit rules (see :class:`amc.models.ModelSpec`): ``single`` keeps groups produced by exactly one
ordinary convolution or linear layer (block interiors, plain chains); ``expanded`` keeps those
that also pass through a depthwise convolution (MobileNetV2's expansions). ``residual=True``
also offers groups coupled through residual additions, where the model allows it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from amc.errors import AmcError
from amc.macs import LayerInfo, layer_table

__all__ = ["Member", "Unit", "UnitGraph"]

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Member:
    """One coupled slice: ``module``'s ``dim`` ("out" or "in") channels, ``index_map[i]`` being
    the module channels that follow the unit's channel ``i`` (shape ``(channels, k)``)."""

    module: str
    dim: str
    handler: Callable[[nn.Module, list[int]], nn.Module] = field(repr=False, compare=False)
    index_map: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Unit:
    """A prunable group of ``channels`` channels, in network order (``index``)."""

    index: int
    name: str
    channels: int
    kind: str  # "single", "expanded" or "residual"
    layer: LayerInfo
    members: tuple[Member, ...] = field(repr=False)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


class UnitGraph:
    """The units of a model and the analytic costs of pruning them.

    ``cost(keep)`` gives MACs and parameters for a vector of kept channel counts, exactly equal
    to counting the physically pruned network (tested), in microseconds rather than a forward
    pass: the search's budget arithmetic runs on it.
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: tuple[int, int, int] = (3, 32, 32),
        *,
        rule: str = "single",
        residual: bool = False,
        classifier: str | None = None,
    ) -> None:
        model.eval()
        self.input_size = input_size
        self.rule, self.residual, self.classifier = rule, residual, classifier
        self.layers = layer_table(model, input_size)
        p = next(model.parameters())
        example = torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)
        self.dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        self._modules = dict(model.named_modules())
        self.units = self._find_units(model, rule, residual)
        if not self.units:
            raise AmcError(
                "the model has no prunable channel groups (convolutions or linear layers "
                "whose outputs can shrink): nothing to search"
            )
        self._build_cost_tables(model)

    def rebuild(self, model: nn.Module) -> UnitGraph:
        """The units of ``model`` (a pruned copy of this graph's model) under the same rule;
        raises if they are not the same units in the same order."""
        graph = UnitGraph(model, self.input_size, rule=self.rule, residual=self.residual, classifier=self.classifier)
        if graph.names() != self.names():
            raise AmcError("pruning changed the network's units (a unit was removed entirely?): cannot continue")
        return graph

    def __deepcopy__(self, memo: dict[int, object]) -> UnitGraph:
        return self  # immutable once built; copies of environments share it

    # -- discovery ---------------------------------------------------------------------------
    def _find_units(self, model: nn.Module, rule: str, residual: bool) -> list[Unit]:
        order = {info.name: i for i, info in enumerate(self.layers)}
        head = self.classifier or self.layers[-1].name
        if head not in self._modules:
            raise AmcError(f"the model has no module '{head}' (its ModelSpec's classifier): name the output layer")
        last = self._modules[head]
        found = []
        skipped: list[str] = []
        for group in self.dg.get_all_groups(root_module_types=list(PRUNABLE_TYPES), ignored_layers=[last]):
            members, producers, has_dw = self._members(group)
            if not producers:
                continue
            unsafe = self._unsafe_reason(members)
            if unsafe:
                skipped.append(f"{min(producers, key=lambda n: order[n])} ({unsafe})")
                continue
            kind = "residual" if len(producers) > 1 else ("expanded" if has_dw else "single")
            if kind == "residual" and not residual:
                continue
            if rule == "expanded" and kind == "single":
                continue
            root = min(producers, key=lambda n: order[n])
            info = self.layers[order[root]]
            found.append((order[root], root, info, kind, members))
        if skipped:
            warnings.warn(
                f"amc leaves {len(skipped)} channel group(s) unpruned that it cannot cut safely: "
                + "; ".join(skipped[:5])
                + (" ..." if len(skipped) > 5 else ""),
                stacklevel=3,
            )
        found.sort(key=lambda t: t[0])
        return [
            Unit(i, name, info.out_channels, kind, info, tuple(members))
            for i, (_, name, info, kind, members) in enumerate(found)
        ]

    def _unsafe_reason(self, members: list[Member]) -> str | None:
        """Why a group cannot be cut exactly (None if it can): grouped convolutions that are not
        depthwise need the same number of channels removed from every group, which a top-k over
        the unit does not guarantee."""
        for mem in members:
            m = self._modules[mem.module]
            if isinstance(m, nn.Conv2d) and m.groups > 1 and not _is_depthwise(m):
                return f"grouped convolution {mem.module} with {m.groups} groups"
        return None

    def _members(self, group: Any) -> tuple[list[Member], list[str], bool]:
        names = self.dg._module2name
        root_len = len(group[0].idxs)
        members, producers, has_dw = [], [], False
        for dep, idxs in group:
            module = dep.target.module
            if not isinstance(module, nn.Module) or module not in names:
                continue  # functional ops: nothing to slice
            name = names[module]
            dim = "out" if self.dg.is_out_channel_pruning_fn(dep.handler) else "in"
            idx = np.asarray([int(i) for i in idxs], dtype=np.int64)
            if len(idx) % root_len:
                raise AmcError(f"cannot map channels of '{name}' in a group of {root_len}")
            members.append(
                Member(
                    name,
                    dim,
                    dep.handler,
                    idx.reshape(root_len, -1) if len(idx) != root_len else idx.reshape(root_len, 1),
                )
            )
            if _is_depthwise(module):
                has_dw = True
            elif dim == "out" and isinstance(module, PRUNABLE_TYPES):
                producers.append(name)
        return members, producers, has_dw

    # -- costs ------------------------------------------------------------------------------
    def _build_cost_tables(self, model: nn.Module) -> None:
        """Sparse maps from units' pruned channels to each layer's lost in/out channels."""
        U = len(self.units)
        self.channels = np.array([u.channels for u in self.units], dtype=np.float64)
        mods = [(n, m) for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
        self._param_mods = mods
        self._P_out = np.zeros((len(mods), U))
        self._P_in = np.zeros((len(mods), U))
        row = {n: i for i, (n, _) in enumerate(mods)}
        for u in self.units:
            for mem in u.members:
                if mem.module in row:
                    target = self._P_out if mem.dim == "out" else self._P_in
                    target[row[mem.module], u.index] += mem.index_map.shape[1]
        self._out_ch = np.array([_channels(m, "out") for _, m in mods], dtype=np.float64)
        self._in_ch = np.array([_channels(m, "in") for _, m in mods], dtype=np.float64)
        self._dw = np.array([_is_depthwise(m) for _, m in mods])
        macs = {info.name: info.macs for info in self.layers}
        self._macs = np.array([macs.get(n, 0) for n, _ in mods], dtype=np.float64)
        self._w = np.array([_weight_params(m) for _, m in mods], dtype=np.float64)
        self._b = np.array([_vector_params(m) for _, m in mods], dtype=np.float64)
        self._scalar_params = sum(p.numel() for p in model.parameters()) - self._w.sum() - self._b.sum()
        self.base_macs = float(self._macs.sum())
        self.base_params = float(self._w.sum() + self._b.sum() + self._scalar_params)

    def fractions(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per parameter-holding module: kept fraction of its output and input channels."""
        pruned = self.channels - np.asarray(keep, dtype=np.float64)
        f_out = 1.0 - (self._P_out @ pruned) / self._out_ch
        f_in = np.where(self._dw, 1.0, 1.0 - (self._P_in @ pruned) / self._in_ch)
        return f_out, f_in

    def cost(self, keep: np.ndarray) -> tuple[float, float]:
        """``(macs, params)`` of the network with ``keep[i]`` channels kept in unit ``i``."""
        f_out, f_in = self.fractions(keep)
        macs = float((self._macs * f_out * f_in).sum())
        params = float((self._w * f_out * f_in).sum() + (self._b * f_out).sum() + self._scalar_params)
        return macs, params

    def unit_macs(self) -> np.ndarray:
        """MACs of each unit's producing layer in the unpruned network."""
        return np.array([u.layer.macs for u in self.units], dtype=np.float64)

    def names(self) -> list[str]:
        return [u.name for u in self.units]


def _channels(m: nn.Module, dim: str) -> int:
    if isinstance(m, nn.Conv2d):
        return m.out_channels if dim == "out" else m.in_channels
    if isinstance(m, nn.Linear):
        return m.out_features if dim == "out" else m.in_features
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm)):
        w = getattr(m, "weight", None)
        return int(w.shape[0]) if w is not None else 1
    p = next(m.parameters(recurse=False))
    return int(p.shape[0])


def _weight_params(m: nn.Module) -> int:
    """Parameters that shrink with both in and out channels (conv and linear weights)."""
    if isinstance(m, PRUNABLE_TYPES):
        return m.weight.numel()
    return 0


def _vector_params(m: nn.Module) -> int:
    """Parameters that shrink with the output channels only (biases, norm affine terms)."""
    total = sum(p.numel() for p in m.parameters(recurse=False))
    return total - _weight_params(m)
