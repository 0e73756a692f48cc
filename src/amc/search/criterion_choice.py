"""``--criterion auto``: the channel criterion chosen per base and budget, by measurement.

Which channels a unit keeps matters as much as how many: group-L1 (every coupled weight a
channel's removal takes away) lifts every method on ResNet-18, ResNet-56 and MobileNetV2 and
costs 1-2 points on VGG-19, where the producing filter's own L1 norm is better
(docs/experiments/group-l1-criterion). ``auto`` cuts three cheap count vectors of the budget
(uniform, Torch-Pruning's global and local L1) under each candidate criterion, scores them on
the held-out images the search's proxy never sees (those :mod:`amc.search.rescore` uses, after a
recalibration on at least 1,000 training images: the search's 500-image proxy could not separate
the criteria on VGG-19), and keeps the criterion of the best-scoring network; ties go to the
first candidate. The choice is kept in the cache (``$AMC_CACHE/criterion``), so every seed and
searcher of the same base and budget reuses it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from amc.checkpoints import atomic_write_bytes
from amc.errors import AmcError
from amc.proxy import ProxyEvaluator, proxy_identity
from amc.pruning.criteria import criterion_names
from amc.search.context import SearchContext

__all__ = [
    "AUTO",
    "CANDIDATES",
    "CHOICE_IMAGES",
    "CriterionChoice",
    "check_criterion",
    "choose_criterion",
    "resolve_criterion",
]

AUTO = "auto"
CANDIDATES = ("group-l1", "l1")  # the first wins a tie
CHOICE_IMAGES = 4000  # as many as the re-scoring (amc.search.runner.SearchRun.rescore_size)


@dataclass(frozen=True)
class CriterionChoice:
    """The chosen criterion and each candidate's held-out accuracy per count vector."""

    criterion: str
    scores: dict[str, dict[str, float]]
    images: int

    def summary(self) -> str:
        if not self.scores:
            return f"--criterion auto: {self.criterion} (no held-out image beyond the proxy's to measure on)"
        best = {c: max(s.values()) for c, s in self.scores.items()}
        shown = ", ".join(f"{c} {a:.2%}" for c, a in best.items())
        return f"--criterion auto: {self.criterion} (best of uniform and Torch-Pruning's L1 counts on {self.images}" \
               f" unseen held-out images: {shown})"  # fmt: skip


def check_criterion(name: str) -> None:
    """Fail before any work on a name that is neither a registered criterion nor ``auto``."""
    if name != AUTO and name not in criterion_names():
        names = ", ".join((*criterion_names(), AUTO))
        raise AmcError(f"--criterion: unknown criterion '{name}': use one of {names}")


def _count_vectors(ctx: SearchContext) -> dict[str, np.ndarray]:
    from amc.search.baselines import uniform_keep
    from amc.search.tp_baselines import tp_keep

    return {"uniform": uniform_keep(ctx), "tp-global-l1": tp_keep(ctx, True), "tp-local-l1": tp_keep(ctx, False)}


def _cache_file(ctx: SearchContext, images: int) -> Path | None:
    """Where the choice for this base, data, budget and scoring is kept (the count vectors follow
    from the budget); None for a base without a checksum."""
    from amc.data import cache_file

    base, b = ctx.base, ctx.budget
    if not base.checkpoint_sha256:
        return None
    ident = {
        "checkpoint": base.checkpoint_sha256,
        "data": base.data.fingerprint,
        "units": [[name, int(c)] for name, c in zip(ctx.graph.names(), b.channels)],
        "budget": [ctx.settings.budget_name, b.target, b.max_sparsity, b.round_to],
        "proxy": proxy_identity(replace(ctx.proxy.config, criterion=AUTO)),
        "images": images,
        "candidates": list(CANDIDATES),
        "runtime": [base.runtime.device.type, base.runtime.precision],
    }
    return cache_file("criterion", ctx.settings.model, ident)


def choose_criterion(ctx: SearchContext, images: int = CHOICE_IMAGES) -> CriterionChoice:
    """Measure each of :data:`CANDIDATES` as the module docstring says (cached: a cached choice
    neither bisects Torch-Pruning's ratios nor loads the unseen images again)."""
    from amc.search.rescore import unseen_evaluator

    path = _cache_file(ctx, images)
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        return CriterionChoice(saved["criterion"], saved["scores"], saved["images"])
    first = unseen_evaluator(ctx, images, criterion=CANDIDATES[0])
    if first is None:  # no held-out image beyond the proxy's: nothing to measure on
        return CriterionChoice(CANDIDATES[0], {}, 0)
    keeps = _count_vectors(ctx)
    scores: dict[str, dict[str, float]] = {}
    for c in CANDIDATES:
        ev = first if c == CANDIDATES[0] else unseen_evaluator(ctx, images, criterion=c)
        assert ev is not None
        scores[c] = {name: ev.evaluate(keep).accuracy for name, keep in keeps.items()}
    best = max(CANDIDATES, key=lambda c: (max(scores[c].values()), -CANDIDATES.index(c)))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"criterion": best, "scores": scores, "images": first.images}
        atomic_write_bytes(path, (json.dumps(record) + "\n").encode())
    return CriterionChoice(best, scores, first.images)


def resolve_criterion(ctx: SearchContext) -> SearchContext:
    """``ctx`` (its settings saying ``auto``, its proxy built on the first candidate) with the
    chosen criterion in its settings and proxy: the study, its policies and their files name the
    criterion that was used."""
    if ctx.settings.proxy.criterion != AUTO:
        return ctx
    choice = choose_criterion(ctx)
    print(choice.summary(), file=sys.stderr, flush=True)
    config = replace(ctx.settings.proxy, criterion=choice.criterion)
    settings = replace(ctx.settings, proxy=config)
    if choice.criterion == ctx.proxy.config.criterion:
        return replace(ctx, settings=settings)
    proxy = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, config)
    return replace(ctx, settings=settings, proxy=proxy)
