"""Export a pruned (or unpruned) network to what users ship: ONNX (dynamic batch) or a
``torch.export`` program (``.pt2``), checked against torch before it is written as done.

The ONNX file runs in onnxruntime with outputs equal to torch's (max abs difference at most
``tolerance`` in fp32, times the outputs' largest magnitude where that exceeds 1, on a batch of 1
and of 3); neither format needs amc, the original
checkpoint or the model's code to run.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from amc.errors import AmcError

__all__ = ["ExportFormat", "export_model", "onnx_max_difference", "load_network"]

ExportFormat = Literal["onnx", "pt2"]


def _plain(model: nn.Module) -> nn.Module:
    """An fp32, contiguous, eval-mode CPU copy (what an exporter should see)."""
    net = copy.deepcopy(model).float().to("cpu")
    net.to(memory_format=torch.contiguous_format)
    return net.eval()


def export_model(model: nn.Module, input_size: tuple[int, ...], path: Path, fmt: ExportFormat,
                 tolerance: float = 1e-4) -> dict[str, Any]:  # fmt: skip
    """Write ``model`` to ``path`` as ``fmt`` (atomically) and return what was checked."""
    net = _plain(model)
    example = torch.randn(2, *input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "pt2":
        program = torch.export.export(net, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(tmp))
        loaded = torch.export.load(str(tmp)).module()
        x = torch.randn(1, *input_size)
        with torch.no_grad():
            diff, scale = float((loaded(x) - net(x)).abs().max()), float(net(x).abs().max())
    else:
        _onnx(net, example, batch, tmp)
        diff, scale = onnx_max_difference(net, tmp, input_size)
    if diff > tolerance * max(1.0, scale):
        tmp.unlink(missing_ok=True)
        raise AmcError(f"the exported {fmt} differs from torch by {diff:.2e} (> {tolerance:g} of the outputs' scale)")
    os.replace(tmp, path)
    return {"path": str(path), "format": fmt, "max_abs_difference": diff, "output_scale": scale,
            "input_size": list(input_size)}  # fmt: skip


def _onnx(net: nn.Module, example: torch.Tensor, batch: Any, path: Path) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its stages
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["x"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,  # one self-contained file (the weights inside, not in a .data file beside it)
        )


@torch.no_grad()
def onnx_max_difference(net: nn.Module, path: Path, input_size: tuple[int, ...]) -> tuple[float, float]:
    """Largest |onnxruntime - torch| over random batches of 1 and 3 (CPU execution provider), and
    the largest |torch output| (differences are judged relative to it when it exceeds 1)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise AmcError("onnxruntime is not installed: pip install onnxruntime (it checks the export)") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = scale = 0.0
    for b in (1, 3):
        x = torch.randn(b, *input_size)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        want = net(x).numpy()
        worst, scale = max(worst, float(np.abs(got - want).max())), max(scale, float(np.abs(want).max()))
    return worst, scale


def load_network(source: str, model: str | None, trust: bool = False) -> tuple[nn.Module, tuple[int, ...], str]:
    """``(network, input size, description)`` from an ``amc apply`` output (``pruned.pt``) or a
    base checkpoint (then ``model`` names its architecture)."""
    from amc.pruned import FORMAT, pruned_from

    path = Path(source)
    if not path.is_file():
        raise AmcError(f"{source} does not exist: pass a pruned.pt written by amc apply, or a base checkpoint")
    head = torch.load(path, map_location="cpu", weights_only=True) if path.suffix in (".pt", ".pth") else None
    if isinstance(head, dict) and head.get("format") == FORMAT:
        net, meta = pruned_from(head)  # already read: not loaded twice
        return net, tuple(meta["input_size"]), f"pruned {meta['model']}"
    if model is None:
        raise AmcError(f"{source} is a base checkpoint, not a pruned model: pass --model to name its architecture")
    from amc.checkpoints import load_weights, read_checkpoint
    from amc.models import build_model, get_spec

    state, _ = read_checkpoint(str(path), trust=trust)
    classes = _classes(state)
    net = build_model(model, classes)
    load_weights(net, state, source=f"checkpoint {source}")
    return net, get_spec(model).input_size, f"unpruned {model}"


def _classes(state: dict[str, torch.Tensor]) -> int:
    """The number of classes: the rows of the last 2-D weight in the state dict."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    return int(weights[-1].shape[0]) if weights else 10
