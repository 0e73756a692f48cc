"""One layer of a network, alone, with some of its channels kept: what the latency table times.

For torch runtimes the layer is a fresh ``nn.Conv2d`` / ``nn.Linear`` with the original's kernel,
stride, padding, dilation and groups; for onnxruntime it is a one-node ONNX graph (``Conv`` or
``Gemm``) built directly with ``onnx.helper`` (exporting thousands of one-layer modules through
torch's exporter would take longer than measuring them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from amc.deploy.runtimes import InferenceRuntime, OnnxRuntime, Runnable
from amc.macs import LayerInfo

__all__ = ["kept_shape", "layer_runnable"]


def _count(fraction: float, channels: int, multiple: int, round_to: int = 1) -> int:
    c = max(multiple, int(round(fraction * channels / multiple)) * multiple)
    if round_to > 1 and c % round_to:  # up to the search's multiple, as its kept counts are
        c = min(channels, -(-c // round_to) * round_to)
    return c


def kept_shape(info: LayerInfo, f_in: float, f_out: float, round_to: int = 1) -> tuple[int, int, int]:
    """``(in_channels, out_channels, groups)`` of the layer with these kept fractions; grouped
    convolutions keep every group the same size, a depthwise one has one channel count; counts
    are rounded up to ``round_to`` (never above the layer's own) when it is above 1."""
    if info.kind == "dwconv":
        c = _count(f_out, info.out_channels, 1, round_to)
        return c, c, c
    g = info.groups
    if g > 1 and round_to > 1:  # a grouped layer keeps equal groups: its count stays on the groups' multiple
        return _count(f_in, info.in_channels, g), _count(f_out, info.out_channels, g), g
    return _count(f_in, info.in_channels, g, round_to), _count(f_out, info.out_channels, g, round_to), g


def _torch_layer(module: nn.Module, cin: int, cout: int, groups: int) -> nn.Module:
    if isinstance(module, nn.Linear):
        return nn.Linear(cin, cout, bias=module.bias is not None)
    assert isinstance(module, nn.Conv2d)
    kh, kw = module.kernel_size
    sh, sw = module.stride
    dh, dw = module.dilation
    padding: Any = module.padding
    return nn.Conv2d(cin, cout, (kh, kw), (sh, sw), padding, (dh, dw), groups, bias=module.bias is not None)


def _onnx_layer(module: nn.Module, cin: int, cout: int, groups: int, input_shape: tuple[int, ...]) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if isinstance(module, nn.Linear):
        w = rng.standard_normal((cout, cin)).astype(np.float32)
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    else:
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        w = rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32)
        ph, pw = module.padding if isinstance(module.padding, tuple) else (0, 0)
        node = helper.make_node(
            "Conv",
            ["x", "w", "b"],
            ["y"],
            kernel_shape=[kh, kw],
            strides=list(module.stride),
            pads=[ph, pw, ph, pw],
            dilations=list(module.dilation),
            group=groups,
        )
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(cout, np.float32), "b")]
    graph = helper.make_graph(
        [node],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def layer_runnable(
    runtime: InferenceRuntime,
    module: nn.Module,
    info: LayerInfo,
    f_in: float,
    f_out: float,
    batch: int,
    round_to: int = 1,
) -> Runnable:
    """A runnable of ``module``'s layer alone with these kept fractions, on ``runtime``."""
    cin, cout, groups = kept_shape(info, f_in, f_out, round_to)
    shape: tuple[int, ...] = (batch, cin) if isinstance(module, nn.Linear) else (batch, cin, *info.in_hw)
    if isinstance(runtime, OnnxRuntime):
        return runtime.runnable_onnx(_onnx_layer(module, cin, cout, groups, shape), shape)
    layer = _torch_layer(module, cin, cout, groups)
    with torch.no_grad():
        return runtime.runnable(layer, shape[1:], batch)
