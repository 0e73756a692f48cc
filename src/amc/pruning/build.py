"""The one build step: kept channel counts -> a pruned, refitted, recalibrated network.

Cut (top-k channels by a criterion scored once), optionally reconstruct (least-squares refit
of consumers), recalibrate BatchNorm on a fixed set of training images. The search's proxy,
``amc apply``, ``amc compare``, the iterative path and the benchmarks all build through it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from amc.data import DataBundle, Split, batches
from amc.presets import DEFAULT_CRITERION
from amc.pruning.criteria import channel_scores
from amc.pruning.prune import kept_indices, prune_model
from amc.pruning.recalibrate import recalibrate_bn
from amc.pruning.reconstruct import Reconstructor
from amc.pruning.units import UnitGraph
from amc.runtime import Runtime

__all__ = ["BuildConfig", "NetworkBuilder"]


@dataclass(frozen=True)
class BuildConfig:
    """``criterion``: channel selection (l1, group-l1, l2, taylor, random, or a registered one).
    ``calib_images``: training images for BatchNorm recalibration (0 = keep the base's
    statistics). ``reconstruct``: least-squares refit of consumer layers."""

    criterion: str = DEFAULT_CRITERION
    calib_images: int = 500
    reconstruct: bool = False
    batch_size: int = 250
    seed: int = 0


def training_draw(data: DataBundle, config: BuildConfig, n: int, skip: int = 0) -> Split:
    """``n`` training images of the draw BatchNorm calibration takes its first ``calib_images``
    from; ``skip=config.calib_images`` gives images no calibration of ``config`` uses."""
    return data.train.subset(n, seed=config.seed + 1, skip=skip)


class NetworkBuilder:
    """Builds pruned networks of one base; what does not depend on the policy (criterion
    scores, calibration batches, Gram matrices) is computed once here."""

    def __init__(
        self,
        model: nn.Module,
        graph: UnitGraph,
        data: DataBundle,
        runtime: Runtime,
        config: BuildConfig = BuildConfig(),
    ) -> None:
        self.model, self.graph, self.runtime, self.config = model, graph, runtime, config
        rt = runtime
        calib = training_draw(data, config, config.calib_images) if config.calib_images else None
        self.calib: list[torch.Tensor] = (
            [x for x, _ in batches(calib, config.batch_size, device=rt.device, channels_last=rt.channels_last)]
            if calib
            else []
        )
        self.scores = channel_scores(model, graph, config.criterion, split=data.heldout, runtime=rt, seed=config.seed)
        self.reconstructor: Reconstructor | None = None
        if config.reconstruct:
            inputs = self.calib or [
                x
                for x, _ in batches(
                    data.heldout.subset(500, seed=config.seed),
                    config.batch_size,
                    device=rt.device,
                    channels_last=rt.channels_last,
                )
            ]
            self.reconstructor = Reconstructor(model, graph, inputs[:2], seed=config.seed)

    def build(self, keep: np.ndarray, timings: dict[str, float] | None = None) -> nn.Module:
        """The pruned (and, as configured, reconstructed and recalibrated) network for ``keep``."""
        timings = timings if timings is not None else {}
        t0 = time.perf_counter()
        kept = kept_indices(self.scores, keep)
        weights = self.reconstructor.refit(kept) if self.reconstructor else None
        t1 = time.perf_counter()
        net = self.runtime.prepare(prune_model(self.model, self.graph, kept, weights))
        t2 = time.perf_counter()
        self.recalibrate(net)
        t3 = time.perf_counter()
        timings.update(reconstruct=t1 - t0, prune=t2 - t1, recalibrate=t3 - t2)
        return net

    def recalibrate(self, net: nn.Module) -> nn.Module:
        """Re-estimate ``net``'s BatchNorm statistics on the calibration images (if any), in
        place; returns it in eval mode."""
        self.runtime.prepare(net)
        if self.calib:
            recalibrate_bn(net, self.calib, self.runtime.autocast)
        return net.eval()
