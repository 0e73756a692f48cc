"""Iterative pruning: reach a policy's kept channels in ``steps`` equal steps, re-scoring the
channels on the current (already pruned and briefly fine-tuned) network before each cut, and
fine-tuning after each (the schedule of Molchanov et al. 2017, used with their Taylor
criterion). One-shot pruning is ``steps=1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from amc.data import DataBundle
from amc.pruning.build import BuildConfig, NetworkBuilder
from amc.pruning.units import UnitGraph
from amc.runtime import Runtime
from amc.training import finetune

__all__ = ["IterativeConfig", "step_keeps", "prune_iteratively"]


@dataclass(frozen=True)
class IterativeConfig:
    """``steps`` cuts; ``epochs_per_step`` of cosine fine-tuning from ``lr`` after each one;
    ``criterion`` re-scores channels on the current network before each cut."""

    steps: int = 4
    epochs_per_step: float = 0.1
    criterion: str = "taylor"
    lr: float = 0.01
    calib_images: int = 2000
    seed: int = 0


def step_keeps(channels: np.ndarray, keep: np.ndarray, steps: int) -> list[np.ndarray]:
    """Kept channels per unit after each step: the channels to remove, taken in equal shares
    (rounded), the last step landing exactly on ``keep``."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    channels = np.asarray(channels, dtype=np.int64)
    keep = np.asarray(keep, dtype=np.int64)
    removed = channels - keep
    return [channels - np.round(removed * k / steps).astype(np.int64) for k in range(1, steps + 1)]


def prune_iteratively(
    model: nn.Module,
    graph: UnitGraph,
    keep: np.ndarray,
    data: DataBundle,
    runtime: Runtime,
    cfg: IterativeConfig,
) -> nn.Module:
    """A pruned, fine-tuned copy of ``model`` with ``keep[i]`` channels in unit ``i`` of
    ``graph`` (``model`` is not changed). Costs ``steps * epochs_per_step`` training epochs."""
    net, current = model, graph
    for k, target in enumerate(step_keeps(graph.channels, keep, cfg.steps), start=1):
        scorer = NetworkBuilder(
            net,
            current,
            data,
            runtime,
            BuildConfig(criterion=cfg.criterion, calib_images=cfg.calib_images, seed=cfg.seed),
        )
        net = scorer.build(target)
        if cfg.epochs_per_step > 0:
            desc = f"step {k}/{cfg.steps} fine-tuning"
            finetune(net, data.train, runtime, cfg.epochs_per_step, lr=cfg.lr, seed=cfg.seed + k, desc=desc)
        net.eval()
        if k < cfg.steps:
            current = current.rebuild(net)
    return net
