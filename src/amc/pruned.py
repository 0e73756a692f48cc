"""The pruned-model file: loads without the original checkpoint.

``{"format": "amc-pruned", "state_dict": ..., "meta": {"model", "num_classes", "keep", "unit_rule",
"residual", "input_size", "policy": ...}}``, read with ``weights_only=True``. Loading rebuilds
the architecture, cuts each unit to its kept channel count (which channels does not matter: the
saved weights replace them) and loads the weights strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from amc.checkpoints import load_weights, save_checkpoint
from amc.errors import AmcError
from amc.models import build_model, get_spec
from amc.pruning.prune import prune_model
from amc.pruning.units import UnitGraph

__all__ = ["FORMAT", "save_pruned", "load_pruned", "pruned_from"]

FORMAT = "amc-pruned"


def save_pruned(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Save a pruned model (``meta`` needs model, num_classes, keep, residual, input_size)."""
    return save_checkpoint(path, model, meta, fmt=FORMAT)


def load_pruned(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, meta)`` from a file written by :func:`save_pruned`."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AmcError(f"{path} is not a readable pruned model ({type(exc).__name__}): re-run amc apply") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise AmcError(f"{path} is not an amc pruned model: pass the pruned.pt written by amc apply")
    return pruned_from(obj)


def pruned_from(obj: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, meta)`` from the loaded content of a pruned-model file."""
    meta = obj["meta"]
    base = build_model(meta["model"], meta["num_classes"])
    graph = UnitGraph(
        base,
        tuple(meta["input_size"]),
        rule=get_spec(meta["model"]).unit_rule,
        residual=meta.get("residual", False),
        classifier=get_spec(meta["model"]).classifier,
    )
    kept = [np.arange(int(k)) for k in meta["keep"]]
    model = prune_model(base, graph, kept)
    load_weights(model, obj["state_dict"], source=f"pruned model {meta['model']}")
    return model.eval(), meta
