"""Unstructured magnitude pruning: individual weights zeroed, with ``torch.nn.utils.prune``.

The budget is the fraction of conv/linear weights left non-zero. ``local`` zeroes the same
fraction of every layer; ``global`` pools all weights' magnitudes and zeroes the smallest
(Han et al. 2015). The classifier is left whole. Zeroed weights give **no dense speed-up**:
the network has the same shapes and runs at the same speed on dense kernels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from amc.errors import AmcError

__all__ = ["MODES", "weight_layers", "sparsities", "apply_masks", "make_permanent", "nonzero_fraction"]

MODES = ("local", "global")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv and linear layers in order, without the final classifier."""
    layers: list[tuple[str, nn.Module]] = [
        (n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    return layers[:-1]


def sparsities(model: nn.Module, keep_fraction: float, mode: str) -> dict[str, float]:
    """Per-layer fraction of weights to zero so that ``keep_fraction`` of them stay non-zero."""
    if mode not in MODES:
        raise AmcError(f"unknown unstructured mode '{mode}': use local or global")
    if not 0 < keep_fraction <= 1:
        raise AmcError(f"budget {keep_fraction} is outside (0, 1]: pass e.g. --params 0.5")
    layers = weight_layers(model)
    if mode == "local":
        return {n: 1.0 - keep_fraction for n, _ in layers}
    mags = torch.cat([_weight(m).detach().abs().flatten().float().cpu() for _, m in layers])
    k = int(round((1.0 - keep_fraction) * mags.numel()))
    if k == 0:
        return {n: 0.0 for n, _ in layers}
    threshold = torch.kthvalue(mags, k).values
    return {n: float((_weight(m).detach().abs().cpu() <= threshold).float().mean()) for n, m in layers}


def apply_masks(model: nn.Module, per_layer: dict[str, float]) -> nn.Module:
    """Zero the smallest-magnitude weights of each named layer, in place (masks stay during
    fine-tuning through torch's pruning hooks)."""
    modules = dict(model.named_modules())
    for name, s in per_layer.items():
        if name not in modules:
            raise AmcError(f"the policy names layer '{name}', which the model does not have")
        layer = modules[name]
        weight = _weight(layer)
        weight.data = weight.data.contiguous()  # torch's pruning views the weight flat
        prune.l1_unstructured(layer, "weight", amount=int(round(s * weight.numel())))  # type: ignore[no-untyped-call]
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into the weights and drop the hooks."""
    for m in model.modules():
        if prune.is_pruned(m) and hasattr(m, "weight_orig"):
            prune.remove(m, "weight")  # type: ignore[no-untyped-call]
    return model


def nonzero_fraction(model: nn.Module) -> float:
    """Fraction of the prunable layers' weights that are non-zero."""
    layers = weight_layers(model)
    total = sum(_weight(m).numel() for _, m in layers)
    return sum(int((_weight(m) != 0).sum()) for _, m in layers) / max(total, 1)


def _weight(m: nn.Module) -> torch.Tensor:
    w = m.weight
    assert isinstance(w, torch.Tensor)
    return w
