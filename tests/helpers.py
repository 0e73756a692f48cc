"""A small, real search problem on tiny data: resnet20 with a random base on 3 classes."""

from __future__ import annotations

from pathlib import Path

import torch

from amc.checkpoints import save_checkpoint
from amc.models import build_model
from amc.proxy import ProxyConfig
from amc.runtime import Runtime
from amc.search.context import SearchContext, SearchSettings, build_context


def tiny_checkpoint(folder: Path, classes: int = 3) -> Path:
    torch.manual_seed(0)
    path = folder / "resnet20-tiny.pt"
    if not path.exists():
        save_checkpoint(path, build_model("resnet20", classes), {"model": "resnet20"})
    return path


def tiny_context(data: Path, folder: Path, target: float = 0.5, precision: str = "fp32", **proxy) -> SearchContext:
    settings = SearchSettings(
        model="resnet20",
        data=str(data),
        checkpoint=str(tiny_checkpoint(folder)),
        target=target,
        proxy=ProxyConfig(size=30, calib_images=20, batch_size=16, **proxy),
        allow_train=False,
    )
    return build_context(settings, Runtime.create("cpu", precision))
