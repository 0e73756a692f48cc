"""Per-layer MACs and parameter counts (the AMC convention: convolutions and linear layers).

One multiply-accumulate (MAC) = one multiplication and one addition, so torch's
``FlopCounterMode`` reports exactly 2x these numbers for convolutions and matmuls.
Per-layer shapes are recorded once with forward hooks; MACs of a pruned variant follow
analytically from the kept channel counts (see :mod:`amc.pruning.units`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerInfo", "layer_table", "count_macs", "count_params", "flop_counter_macs"]


@dataclass(frozen=True)
class LayerInfo:
    """A convolution or linear layer as it runs on one input image.

    ``macs`` counts multiply-accumulates for one image; ``out_hw`` is the output feature map
    (1x1 for linear layers).
    """

    name: str
    kind: str  # "conv", "dwconv" (depthwise) or "linear"
    in_channels: int
    out_channels: int
    groups: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    macs: int
    params: int


def _info(name: str, m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LayerInfo:
    params = sum(p.numel() for p in m.parameters(recurse=False))
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        oh, ow = y.shape[-2:]
        macs = oh * ow * m.out_channels * (m.in_channels // m.groups) * kh * kw
        dw = m.groups == m.in_channels and m.groups > 1
        return LayerInfo(
            name,
            "dwconv" if dw else "conv",
            m.in_channels,
            m.out_channels,
            m.groups,
            (kh, kw),
            (int(m.stride[0]), int(m.stride[1])),
            (int(x.shape[-2]), int(x.shape[-1])),
            (oh, ow),
            macs,
            params,
        )
    assert isinstance(m, nn.Linear)
    rows = int(x.numel() // x.shape[-1] // x.shape[0])
    return LayerInfo(
        name,
        "linear",
        m.in_features,
        m.out_features,
        1,
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 1),
        rows * m.in_features * m.out_features,
        params,
    )


@torch.no_grad()
def layer_table(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> list[LayerInfo]:
    """Every conv/linear layer in execution order, with its MACs for one ``input_size`` image."""
    table: list[LayerInfo] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [
        m.register_forward_hook(lambda m, i, o: table.append(_info(names[m], m, i[0], o)))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        model(torch.zeros(1, *input_size, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return table


def count_macs(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> int:
    """Total multiply-accumulates of conv and linear layers for one image."""
    return sum(layer.macs for layer in layer_table(model, input_size))


def count_params(model: nn.Module) -> int:
    """All trainable parameters (weights, biases, BatchNorm affine terms)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def flop_counter_macs(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> int:
    """MACs as torch's ``FlopCounterMode`` sees them (its FLOPs / 2), for cross-checks."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    p = next(model.parameters())
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_size, device=p.device, dtype=p.dtype))
    return int(counter.get_total_flops()) // 2
