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

import functools
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
from amc.models import refuse_transformers

__all__ = ["Member", "Unit", "UnitGraph"]

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Member:
    """One coupled slice: ``module``'s ``dim`` ("out" or "in") channels, ``index_map[i]`` being
    the module channels that follow the unit's channel ``i`` (shape ``(channels, k)``). A
    parameter used outside any layer (ConvNeXt's ``layer_scale``) is a member with ``param`` set
    to its attribute on ``module`` and ``dim`` "out"; its handler returns the sliced parameter."""

    module: str
    dim: str
    handler: Callable[[Any, list[int]], Any] = field(repr=False, compare=False)
    index_map: np.ndarray = field(repr=False, compare=False)
    param: str | None = None


@dataclass(frozen=True)
class Unit:
    """A prunable group of ``channels`` channels, in network order (``index``)."""

    index: int
    name: str
    channels: int
    kind: str  # "single", "expanded" or "residual"
    layer: LayerInfo
    members: tuple[Member, ...] = field(repr=False)
    # through a grouped convolution of G groups: each unit channel stands for the same position in
    # every group (G producer channels, ``fold[i]``), so every group keeps the same channels
    fold: np.ndarray | None = field(default=None, repr=False, compare=False)


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
        refuse_transformers(model)
        self.input_size = input_size
        self.rule, self.residual, self.classifier = rule, residual, classifier
        self.layers = layer_table(model, input_size)
        p = next(model.parameters())
        example = torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)
        try:
            self.dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        except Exception as exc:  # noqa: BLE001 - any failure to trace is reported in one line
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            step = where.tb_frame.f_code.co_name if where is not None else "?"
            raise AmcError(
                f"Torch-Pruning cannot trace the channel dependencies of this model ({type(exc).__name__} in "
                f"{step}; a channel shuffle or a reshape that mixes channels, as in ShuffleNet, does this): "
                "amc cannot prune it"
            ) from None
        self._modules = dict(model.named_modules())
        # parameters used outside any layer, and the dimension Torch-Pruning cuts them along
        self._param_dims = {u.parameters: u.pruning_dim for u in self.dg.unwrapped_parameters}
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
            try:
                members, producers, has_dw = self._members(group)
            except _LeftOut as why:
                skipped.append(f"{self.dg._module2name.get(group[0].dep.target.module, '?')} ({why})")
                continue
            if len(group[0].idxs) < 2 and len(producers) > 1:  # Torch-Pruning couples a broadcast as channels
                skipped.append(f"{', '.join(producers[1:])} (multiplied by the one-channel {producers[0]})")
            if not producers or len(group[0].idxs) < 2:
                continue  # nothing produces the channels, or one channel that cannot be removed
            folded = fold_groups(members, self._modules)
            if isinstance(folded, str):
                skipped.append(f"{min(producers, key=lambda n: order[n])} ({folded})")
                continue
            members = folded
            kind = "residual" if len(producers) > 1 else ("expanded" if has_dw else "single")
            if kind == "residual" and not residual:
                continue
            if rule == "expanded" and kind == "single":
                continue
            root = min(producers, key=lambda n: order[n])
            info = self.layers[order[root]]
            found.append((order[root], root, info, kind, members, _producer_map(members, root)))
        if skipped:
            warnings.warn(
                f"amc leaves {len(skipped)} channel group(s) unpruned that it cannot cut safely: "
                + "; ".join(skipped[:5])
                + (" ..." if len(skipped) > 5 else ""),
                stacklevel=3,
            )
        found.sort(key=lambda t: t[0])
        return [
            Unit(i, name, len(members[0].index_map), kind, info, tuple(members), fold if fold.shape[1] > 1 else None)
            for i, (_, name, info, kind, members, fold) in enumerate(found)
        ]

    def _members(self, group: Any) -> tuple[list[Member], list[str], bool]:
        names = self.dg._module2name
        root_len = len(group[0].idxs)
        members, producers, has_dw = [], [], False
        for item in group:
            dep = item.dep
            module = dep.target.module
            param = None
            handler = dep.handler
            if isinstance(module, nn.Parameter) and module in self.dg._param_to_name:
                name, _, param = self.dg._param_to_name[module].rpartition(".")
                handler = functools.partial(_slice_parameter, dim=self._param_dims[module])
            elif not isinstance(module, nn.Module) or module not in names:
                continue  # functional ops: nothing to slice
            else:
                name = names[module]
            dim = "out" if param or self.dg.is_out_channel_pruning_fn(dep.handler) else "in"
            members.append(Member(name, dim, handler, _index_map(item.idxs, item.root_idxs, root_len, name), param))
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

    def fold(self, scores: list[np.ndarray]) -> list[np.ndarray]:
        """Per-producer-channel scores -> per-unit-channel scores: a unit through a grouped
        convolution scores each of its channels by the mean over the producer channels it stands
        for (as Torch-Pruning's pruners average importance over channel groups)."""
        return [s if u.fold is None else np.asarray(s)[u.fold].mean(1) for s, u in zip(scores, self.units)]


def _index_map(idxs: Any, roots: Any, root_len: int, name: str) -> np.ndarray:
    """``(root_len, k)``: the layer channels that follow each root channel, grouped by the root
    index Torch-Pruning carries with every index (a tensor concatenated twice lists its copies
    one after the other, a flatten lists each channel's block together: both come out right)."""
    rows: list[list[int]] = [[] for _ in range(root_len)]
    if roots is None or len(roots) != len(idxs):
        raise _LeftOut(f"the channels of {name} do not map onto the group's {root_len}")
    for i, root in zip(idxs, roots):
        if not 0 <= int(root) < root_len:
            raise _LeftOut(f"the channels of {name} do not map onto the group's {root_len}")
        rows[int(root)].append(int(i))
    k = len(rows[0])
    if k == 0 or any(len(r) != k for r in rows):
        raise _LeftOut(f"the channels of {name} do not map evenly onto the group's {root_len}")
    return np.asarray(rows, dtype=np.int64)


class _LeftOut(Exception):
    """A channel group that cannot be cut exactly: left unpruned, with a warning."""


def _slice_parameter(p: nn.Parameter, idxs: list[int], dim: int) -> nn.Parameter:
    """``p`` without entries ``idxs`` along ``dim`` (a bare parameter's cut)."""
    keep = torch.as_tensor(sorted(set(range(p.shape[dim])) - set(idxs)), dtype=torch.long, device=p.device)
    return nn.Parameter(p.detach().index_select(dim, keep).clone(), requires_grad=p.requires_grad)


def _producer_map(members: list[Member], root: str) -> np.ndarray:
    return next(m.index_map for m in members if m.module == root and m.dim == "out")


def _grouped(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and not _is_depthwise(module)


def fold_groups(members: list[Member], modules: dict[str, nn.Module]) -> list[Member] | str:
    """The members of a group that passes through grouped (not depthwise) convolutions, with
    each unit channel standing for one position within a group and its copies in all G groups,
    so that a cut removes the same channels from every group (a grouped convolution stays exact
    only so). Returns ``members`` unchanged without grouped convolutions, or the reason the group
    cannot be folded."""
    grouped = [mem for mem in members if _grouped(modules[mem.module])]
    if not grouped:
        return members
    channels = len(members[0].index_map)
    rows: np.ndarray | None = None
    for mem in grouped:
        conv = modules[mem.module]
        assert isinstance(conv, nn.Conv2d)
        width = conv.in_channels if mem.dim == "in" else conv.out_channels
        per = width // conv.groups
        where = f"grouped convolution {mem.module} with {conv.groups} groups"
        if mem.index_map.shape[1] != 1 or channels != width:
            return f"{where} takes only part of the group's channels"
        idx = mem.index_map[:, 0]
        order = np.lexsort((idx // per, idx % per))  # by position in the group, then by group
        candidate = order.reshape(per, conv.groups)
        if rows is not None and not np.array_equal(rows, candidate):
            return f"{where} groups the channels unlike another grouped convolution of the same group"
        rows = candidate
    assert rows is not None
    return [Member(m.module, m.dim, m.handler, m.index_map[rows].reshape(len(rows), -1), m.param) for m in members]


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
