"""Fast scoring of a pruning policy on the held-out split: the search's hot path.

For kept channel counts ``keep``: build the pruned network (:mod:`amc.pruning.build`: cut,
optionally refit, recalibrate BatchNorm) and measure top-1 accuracy on a fixed subset of the
held-out split. Never the test split. The held-out batches are prepared once (normalised,
channels_last, on the device), and results are cached by ``keep`` (the network is a function
of it), so the same policy always gets the same score.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from amc.data import DataBundle, batches
from amc.presets import DEFAULT_CRITERION
from amc.pruning.build import BuildConfig, NetworkBuilder, training_draw
from amc.pruning.recalibrate import use_batch_statistics
from amc.pruning.units import UnitGraph
from amc.runtime import Runtime

__all__ = ["ProxyConfig", "ProxyResult", "ProxyEvaluator", "proxy_identity"]

BNMode = Literal["recalibrate", "batch"]
Batches = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ProxyConfig:
    """``size``: held-out images scored. ``calib_images``: training images for BatchNorm
    recalibration (0 = keep the base's statistics). ``criterion``: channel selection
    (l1, group-l1, l2, taylor, random). ``reconstruct``: least-squares refit of consumer layers.
    ``bn``: ``recalibrate`` re-estimates BatchNorm statistics on ``calib_images`` training images,
    then scores the folded network; ``batch`` skips that pass and normalises each scored batch of
    ``batch_size`` held-out images by its own statistics (``calib_images`` unused).
    ``confirm``: racing. A policy whose first score reaches the best confirmed score so far is
    scored again on this many further held-out images (after the first ``size``), and its result
    is the accuracy and loss over all of them: the policies that would become the search's best
    are measured on more images, the rest pay nothing (0: off)."""

    size: int = 500
    calib_images: int = 250
    criterion: str = DEFAULT_CRITERION
    reconstruct: bool = False
    batch_size: int = 250  # 500 is no faster on 2 cores and costs ~0.5 GiB more on MobileNetV2
    seed: int = 0
    bn: BNMode = "recalibrate"
    confirm: int = 0

    @property
    def heldout_used(self) -> int:
        """Held-out images of the seeded draw the proxy scores on (a re-scoring proxy skips them)."""
        return self.size + self.confirm

    def build_config(self) -> BuildConfig:
        calib = 0 if self.bn == "batch" else self.calib_images
        return BuildConfig(self.criterion, calib, self.reconstruct, self.batch_size, self.seed)


def proxy_identity(config: ProxyConfig) -> dict[str, Any]:
    """``config`` as a study's or cache's fingerprint names it: fields added since studies were first
    saved appear only when they differ from their default, so older studies and caches still match."""
    ident = asdict(config)
    for name, default in (("bn", "recalibrate"), ("confirm", 0)):
        if ident[name] == default:
            del ident[name]
    return ident


@dataclass(frozen=True)
class ProxyResult:
    """Accuracy (fraction of ``images`` held-out images), mean cross-entropy, and where the time
    went (seconds)."""

    accuracy: float
    images: int
    seconds: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")  # mean cross-entropy on the same images (the ``loss`` reward)


class ProxyEvaluator:
    """Scores kept-channel vectors of one base model; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        graph: UnitGraph,
        data: DataBundle,
        runtime: Runtime,
        config: ProxyConfig = ProxyConfig(),
        skip: int = 0,
        split: Literal["heldout", "train"] = "heldout",
    ) -> None:
        """``skip``: held-out images of the seeded draw passed over (a second proxy that skips the
        first one's ``size`` images scores on images the first never saw). ``split="train"`` scores
        on training images instead, drawn after the calibration images of the same draw (so none is
        both): for measurements that rank units, never for the search's proxy."""
        self.model, self.graph, self.runtime, self.config = model, graph, runtime, config
        build = config.build_config()
        held = (
            training_draw(data, build, config.size, skip=skip + build.calib_images)
            if split == "train"
            else data.heldout.subset(config.size, seed=config.seed, skip=skip)
        )
        self._eval = list(batches(held, config.batch_size, device=runtime.device, channels_last=runtime.channels_last))
        self.images = sum(len(y) for _, y in self._eval)  # how many images a policy is scored on (first)
        self._confirm: Batches = []  # racing's further held-out images, after the first ``size``
        if config.confirm and split == "heldout":
            more = data.heldout.subset(config.confirm, seed=config.seed, skip=skip + config.size)
            self._confirm = list(batches(more, config.batch_size, device=runtime.device,
                                         channels_last=runtime.channels_last))  # fmt: skip
        self.confirm_images = sum(len(y) for _, y in self._confirm)
        self.best_confirmed = -np.inf  # racing: the best accuracy over first and confirming images so far
        self._fold = True  # False once torch.fx has failed to trace this base: not tried again each episode
        self.builder = NetworkBuilder(model, graph, data, runtime, config.build_config())
        self._cache: dict[tuple[int, ...], ProxyResult] = {}
        self.totals: dict[str, float] = {}  # seconds per stage over all uncached evaluations
        self.evaluations = 0

    def build(self, keep: np.ndarray, timings: dict[str, float] | None = None) -> nn.Module:
        """The pruned network for ``keep`` (see :class:`~amc.pruning.build.NetworkBuilder`)."""
        return self.builder.build(keep, timings)

    @torch.no_grad()
    def accuracy(self, net: nn.Module) -> float:
        return self.measure(net)[0]

    @torch.no_grad()
    def measure(self, net: nn.Module, on: Batches | None = None) -> tuple[float, float]:
        """Top-1 accuracy and mean cross-entropy of ``net`` on the proxy's images (or ``on``)."""
        correct, loss, total = 0, 0.0, 0
        for x, y in self._eval if on is None else on:
            with self.runtime.autocast():
                logits = net(x)
            correct += int((logits.argmax(1) == y).sum())
            loss += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
            total += len(y)
        return correct / max(total, 1), loss / max(total, 1)

    def recalibrated_accuracy(self, net: nn.Module) -> float:
        """Accuracy of an already-modified network after BN recalibration (not cached)."""
        return self.accuracy(self.runtime.folded(self.builder.recalibrate(net)))

    def evaluate(self, keep: np.ndarray) -> ProxyResult:
        """Held-out accuracy and loss of the network pruned to ``keep`` (cached by ``keep``)."""
        key = tuple(int(k) for k in keep)
        if key in self._cache:
            return self._cache[key]
        timings: dict[str, float] = {}
        net = self.build(np.asarray(key), timings)
        t = time.perf_counter()
        if self.config.bn == "batch":
            folded = use_batch_statistics(net)
        else:
            folded = self.runtime.folded(net, inplace=True) if self._fold else net
            self._fold = folded is not net
        acc, loss = self.measure(folded)
        timings["forward"] = time.perf_counter() - t
        result = self._confirmed(folded, ProxyResult(acc, self.images, timings, loss))
        self._cache[key] = result
        self.evaluations += 1
        for stage, seconds in result.seconds.items():  # racing's "confirm" too
            self.totals[stage] = self.totals.get(stage, 0.0) + seconds
        return result

    def _confirmed(self, net: nn.Module, first: ProxyResult) -> ProxyResult:
        """``first``, or, when racing and it reaches the best confirmed score, the result over its
        images and the confirming ones (see :class:`ProxyConfig`)."""
        if not self._confirm or first.accuracy < self.best_confirmed:
            return first
        t = time.perf_counter()
        acc, loss = self.measure(net, self._confirm)
        n = self.confirm_images
        total = first.images + n
        result = ProxyResult(
            (first.accuracy * first.images + acc * n) / total,
            total,
            first.seconds | {"confirm": time.perf_counter() - t},
            (first.loss * first.images + loss * n) / total,
        )
        self.best_confirmed = max(self.best_confirmed, result.accuracy)
        return result

    def base_accuracy(self) -> float:
        """The unpruned base on the same held-out subset, with its own BatchNorm statistics."""
        return self.accuracy(self.model.eval())

    @property
    def scores(self) -> list[np.ndarray]:
        return self.builder.scores
