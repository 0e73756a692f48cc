"""Hand-made policies every learned one must beat.

- ``uniform``: the same sparsity for every unit, the least that meets the budget (bisection),
  then single channels added back to the most-pruned units while the budget holds (so channel
  rounding does not waste budget; sparsities stay equal to within one channel).
- ``global``: "pruning at a glance": every filter's L1 norm divided by its number of weights,
  pooled across units, the lowest removed until the budget is met, no unit beyond
  ``max_sparsity``, then topped up like uniform.
- ``sensitivity``: prune one unit at a time at a few sparsities, measure the held-out proxy's
  cross-entropy (and accuracy), then spend the budget where the cross-entropy rises least per
  MAC saved (:data:`SCAN_METRIC`; by accuracy, many cuts tie on a small proxy); topped up.
- ``tp-global-l1`` / ``tp-local-l1``: Torch-Pruning's own L1 pruners, their ratio bisected to
  the budget (:mod:`amc.search.tp_baselines`).

Every policy returned spends its budget: channels are added back (``Budget.fill``) until the
next one would break it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from amc.checkpoints import atomic_write_bytes
from amc.policy import Policy
from amc.progress import Progress
from amc.proxy import ProxyEvaluator, proxy_identity
from amc.pruning.budget import Budget
from amc.pruning.criteria import filter_norms
from amc.search.base import Searcher, SearchSession, register_searcher
from amc.search.context import SearchContext
from amc.search.tp_baselines import tp_keep

__all__ = [
    "uniform_keep",
    "shaped_keep_for",
    "uniform_keep_for",
    "global_keep",
    "sensitivity_keep",
    "sensitivity_scan",
    "scan_evaluator",
    "ScanImages",
    "HEURISTICS",
    "HeuristicSearcher",
]

ScanMetric = Literal["accuracy", "loss"]
# what the sensitivity policy spends the budget by: the proxy's cross-entropy separates single-unit cuts its
# accuracy ties on (bench/sensitivity_metric.py: on ResNet-56 and MobileNetV2 at 0.3-0.7 of the MACs, better in
# every cell, by up to 3 points on ResNet-56 and 6 on MobileNetV2); studies made by accuracy are not resumed
SCAN_METRIC: ScanMetric = "loss"


@dataclass(frozen=True)
class ScanImages:
    """Where the sensitivity scan scores its single-unit cuts: ``"proxy"``, the search's own proxy
    images (held-out); ``"train"``, ``size`` training images of draw ``draw``, BatchNorm
    recalibrated on ``size // 2`` others. A training scan does not depend on the search's seed, so
    one scan of a base serves every search, and it shares no image with the held-out split the
    policies are judged on."""

    source: Literal["proxy", "train"] = "proxy"
    size: int = 2000
    draw: int = 0


# The scan scores on 2,000 training images (bench/results/policy_quality-*-f05-trainscan*.json, three seeds each):
# one scan per base serves every seed and budget, and DDPG around it beat the proxy-image scan on ResNet-56 at 0.5
# (87.12 +- 0.11 / 82.37 +- 0.25% held-out / test against 86.41 +- 0.90 / 81.36 +- 0.85%) and tied on MobileNetV2
# (66.15 +- 0.41 / 64.28 +- 0.29% against 66.23 +- 0.31 / 64.24 +- 0.06%); studies scanned on the proxy's images
# are not resumed under it
SCAN_IMAGES = ScanImages("train", 2000)


def uniform_keep(ctx: SearchContext) -> np.ndarray:
    """The least uniform sparsity that fits the context's budget."""
    return uniform_keep_for(ctx.budget)


def uniform_keep_for(b: Budget) -> np.ndarray:
    """The least uniform sparsity that fits ``b`` (bisection on the sparsity, then a top-up)."""
    return shaped_keep_for(b, np.ones(len(b.channels)))


def shaped_keep_for(b: Budget, shape: np.ndarray) -> np.ndarray:
    """The least ``t`` such that sparsities ``min(t * shape, max)`` fit ``b`` (bisection on ``t``,
    then a top-up): the uniform policy for a flat ``shape``, others of the same budget for others."""
    n = len(b.channels)
    shape = np.asarray(shape, dtype=float) / float(np.max(shape))

    def at(t: float) -> np.ndarray:
        return b.keep(np.minimum(t * shape, b.max_sparsity))

    if b.fits(b.keep(np.zeros(n))):
        return b.keep(np.zeros(n))
    lo, hi = 0.0, b.max_sparsity / float(np.min(shape))
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if b.fits(at(mid)) else (mid, hi)
    return b.fill(at(hi))


def global_keep(ctx: SearchContext) -> np.ndarray:
    """Remove the globally least important filters (normalised L1) until the budget fits."""
    b = ctx.budget
    scores = filter_norms(ctx.base.model, ctx.graph, p=1, per_weight=True)
    unit_of = np.concatenate([np.full(len(s), i) for i, s in enumerate(scores)])
    order = unit_of[np.argsort(np.concatenate(scores), kind="stable")]  # unit of each channel, weakest first
    cap = b.channels - b.min_keep

    def keep_after(r: int) -> np.ndarray:
        removed = np.minimum(np.bincount(order[:r], minlength=len(scores)), cap)
        return b.keep(b.sparsity(b.channels - removed))

    lo, hi = 0, len(order)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if b.fits(keep_after(mid)) else (mid, hi)
    return b.fill(keep_after(lo) if b.fits(keep_after(lo)) else keep_after(hi))


def scan_evaluator(ctx: SearchContext, images: ScanImages | None = None) -> ProxyEvaluator:
    """What scores the scan's cuts (:class:`ScanImages`; default :data:`SCAN_IMAGES`)."""
    images = images or SCAN_IMAGES
    if images.source == "proxy":
        return ctx.proxy
    n = len(ctx.base.data.train)  # a small training split: two thirds scored, the rest calibrates
    size = min(images.size, 2 * n // 3)
    config = replace(ctx.proxy.config, size=size, calib_images=min(size // 2, n - size), seed=images.draw, confirm=0)
    return ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, config, split="train")


def _scan_file(ctx: SearchContext, levels: tuple[float, ...], scanner: ProxyEvaluator) -> Path | None:
    """Where the scan of this base, data, units, rounding and scoring images is kept between
    processes (it does not depend on the budget's target); None for a base without a checksum."""
    from amc.data import cache_file

    base = getattr(ctx, "base", None)
    if base is None or not base.checkpoint_sha256:
        return None
    b = ctx.budget
    ident = {
        "checkpoint": base.checkpoint_sha256,
        "data": base.data.fingerprint,
        "units": [[name, int(c)] for name, c in zip(ctx.graph.names(), b.channels)],
        "proxy": proxy_identity(scanner.config),
        **({"images": "train"} if scanner is not ctx.proxy else {}),
        "round_to": b.round_to,
        "max_sparsity": b.max_sparsity,
        "levels": list(levels),
        "runtime": [base.runtime.device.type, base.runtime.precision],
    }
    return cache_file("sensitivity", ctx.settings.model, ident)


def sensitivity_scan(
    ctx: SearchContext,
    levels: tuple[float, ...] = (0.25, 0.5, 0.75),
    progress: bool = True,
    metric: ScanMetric = "accuracy",
    images: ScanImages | None = None,
) -> np.ndarray:
    """Accuracy (or mean cross-entropy, ``metric="loss"``) with one unit pruned at each level, on
    the scan's images (:func:`scan_evaluator`): shape ``(units, levels)``. One scan records both;
    it is kept in the cache (``$AMC_CACHE/sensitivity``), so another budget, metric or process
    reuses it."""
    return _cached_scan(ctx, scan_evaluator(ctx, images), levels, progress, metric)


def _cached_scan(
    ctx: SearchContext, scanner: ProxyEvaluator, levels: tuple[float, ...], progress: bool, metric: ScanMetric
) -> np.ndarray:
    path = _scan_file(ctx, levels, scanner)
    if path is not None and path.is_file():
        kept = json.loads(path.read_text())
        kept = kept if isinstance(kept, dict) else {"accuracy": kept}  # earlier caches: accuracy only
        if metric in kept:
            return np.asarray(kept[metric], dtype=np.float64)
    scans = _scan(ctx, scanner, levels, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({k: v.tolist() for k, v in scans.items()}).encode())
    return scans[metric]


def _scan(
    ctx: SearchContext, scanner: ProxyEvaluator, levels: tuple[float, ...], progress: bool
) -> dict[str, np.ndarray]:
    b = ctx.budget
    n = len(b.channels)
    acc, loss = np.zeros((n, len(levels))), np.zeros((n, len(levels)))
    bar = Progress(n * len(levels), "sensitivity scan", "eval", enabled=progress)
    for i in range(n):
        for j, s in enumerate(levels):
            sparsity = np.zeros(n)
            sparsity[i] = min(s, b.max_sparsity)
            result = scanner.evaluate(b.keep(sparsity))
            acc[i, j], loss[i, j] = result.accuracy, result.loss
            bar.update(1)
    bar.close()
    return {"accuracy": acc, "loss": loss}


def sensitivity_keep(
    ctx: SearchContext,
    levels: tuple[float, ...] = (0.25, 0.5, 0.75),
    step: float = 0.05,
    progress: bool = True,
    metric: ScanMetric | None = None,
    images: ScanImages | None = None,
) -> np.ndarray:
    """Greedy allocation on the interpolated sensitivity curves (see module docstring); ``metric``
    (default :data:`SCAN_METRIC`): what a unit's cut costs, the accuracy drop or the cross-entropy
    rise; ``images`` (default :data:`SCAN_IMAGES`): where it is measured."""
    metric = metric or SCAN_METRIC
    b = ctx.budget
    n = len(b.channels)
    curve_x = np.array((0.0, *levels))
    scanner = scan_evaluator(ctx, images)
    unpruned = scanner.evaluate(b.keep(np.zeros(n)))
    sign = 1.0 if metric == "accuracy" else -1.0  # scores: higher is better
    base = sign * (unpruned.accuracy if metric == "accuracy" else unpruned.loss)
    scan = sign * _cached_scan(ctx, scanner, levels, progress, metric)
    curves = np.concatenate([np.full((n, 1), base), scan], axis=1)

    def drop(i: int, s: float) -> float:
        return float(base - np.interp(s, curve_x, curves[i]))

    s = np.zeros(n)
    keep = b.keep(s)
    best = -1
    while not b.fits(keep):
        best, best_value, best_next = -1, -np.inf, 0.0
        current = b.ratio(keep)
        for i in range(n):
            nxt = _next_cut(b, s, i, step, keep)
            if nxt <= s[i]:
                continue
            trial = s.copy()
            trial[i] = nxt
            saved = current - b.ratio(b.keep(trial))
            cost = max(drop(i, nxt) - drop(i, s[i]), 0.0) + 1e-4
            if saved > 0 and saved / cost > best_value:
                best, best_value, best_next = i, saved / cost, nxt
        if best < 0:
            break
        previous = s[best]
        s[best] = best_next
        keep = b.keep(s)
    if best >= 0:  # the last step may overshoot: back it off to the least sparsity that fits
        s[best] = _least_fitting(b, s, best, previous)
        keep = b.keep(s)
    return b.fill(keep)


def _next_cut(b: Budget, s: np.ndarray, i: int, step: float, keep: np.ndarray) -> float:
    """Unit ``i``'s sparsity after the smallest multiple of ``step`` that removes at least one
    channel (a 0.05 step keeps the same count on small units: without this the greedy stalls
    short of the budget)."""
    trial = s.copy()
    while trial[i] < b.max_sparsity:
        trial[i] = min(trial[i] + step, b.max_sparsity)
        if b.keep(trial)[i] != keep[i]:
            break
    return float(trial[i])


def _least_fitting(b: Budget, s: np.ndarray, i: int, lo: float) -> float:
    hi = s[i]
    for _ in range(30):
        mid = (lo + hi) / 2
        trial = s.copy()
        trial[i] = mid
        lo, hi = (lo, mid) if b.fits(b.keep(trial)) else (mid, hi)
    return float(hi)


HEURISTICS: dict[str, Callable[[SearchContext], np.ndarray]] = {
    "uniform": uniform_keep,
    "global": global_keep,
    "sensitivity": sensitivity_keep,
    "tp-global-l1": lambda ctx: tp_keep(ctx, global_pruning=True),
    "tp-local-l1": lambda ctx: tp_keep(ctx, global_pruning=False),
}


class HeuristicSearcher(Searcher):
    """A deterministic policy: computed once and recorded as the study's one trial. Running
    it again with the same settings reuses that trial (the runner says so)."""

    def keep(self, ctx: SearchContext, progress: bool) -> np.ndarray:
        return HEURISTICS[self.name](ctx)

    def run(self, session: SearchSession) -> Policy | None:
        if session.done == 0:
            session.record(session.score(self.keep(session.ctx, session.run.progress)))
        session.progress.close()
        return None


@register_searcher
class UniformSearcher(HeuristicSearcher):
    name = "uniform"
    description = "the same sparsity for every unit, topped up to spend the budget"


@register_searcher
class GlobalSearcher(HeuristicSearcher):
    name = "global"
    description = "one threshold over size-normalised L1 filter norms"


@register_searcher
class SensitivitySearcher(HeuristicSearcher):
    name = "sensitivity"
    description = "layer-wise sensitivity scan, budget spent where accuracy drops least"

    def keep(self, ctx: SearchContext, progress: bool) -> np.ndarray:
        return sensitivity_keep(ctx, progress=progress)


@register_searcher
class TorchPruningGlobalSearcher(HeuristicSearcher):
    name = "tp-global-l1"
    description = "Torch-Pruning's MetaPruner, global group-L1 threshold, ratio bisected to the budget"


@register_searcher
class TorchPruningLocalSearcher(HeuristicSearcher):
    name = "tp-local-l1"
    description = "Torch-Pruning's MetaPruner, the same group-L1 ratio in every layer, bisected to the budget"
