"""A latency budget checked on the runtime itself: the search's best policies by held-out proxy
accuracy are cut out and timed back to back with the unpruned network (as the latency table's
calibration is), and the most accurate one whose measured ratio is within the budget wins. A
ratio within the budget is measured a second time and the larger of the two is kept: on a shared
machine one measurement can read low (a MobileNetV2 policy measured 0.587 inside the search and
0.695 in the benchmark that followed), and a budget should not be passed by a lucky draw.

The latency table predicts a policy's latency within a few percent on average, but a single
network can be off by more (kernels chosen by channel count, e.g. onnxruntime's at 40 channels):
a budget the user ships on should be kept as measured, not as predicted (NetAdapt measures
every proposal for the same reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from amc.deploy.runtimes import InferenceRuntime
from amc.deploy.table import measure_ratio, pruned_copy
from amc.progress import Progress
from amc.pruning.units import UnitGraph

__all__ = ["Candidate", "Verified", "verify_latency"]

ROUNDS = 7  # back-to-back rounds per measurement (bench/latency_budget.py times its results the same way)


@dataclass(frozen=True)
class Candidate:
    """A policy the search found: kept channels, its score (higher is better), its predicted ratio."""

    keep: np.ndarray
    score: float
    predicted: float


@dataclass
class Verified:
    """The chosen candidate (index into the list given) and every measured ratio by index."""

    index: int
    measured: dict[int, float] = field(default_factory=dict)
    within: bool = True


def _by_score(candidates: Sequence[Candidate], top: int) -> list[int]:
    return sorted(range(len(candidates)), key=lambda i: -candidates[i].score)[:top]


def _by_speed(candidates: Sequence[Candidate], top: int, skip: Sequence[int]) -> list[int]:
    fastest = sorted(range(len(candidates)), key=lambda i: candidates[i].predicted)
    return [i for i in fastest if i not in skip][:top]


def verify_latency(
    model: nn.Module,
    graph: UnitGraph,
    runtime: InferenceRuntime,
    batch: int,
    candidates: Sequence[Candidate],
    target: float,
    top: int = 6,
) -> Verified:
    """The best-scoring candidate whose measured latency ratio is at most ``target``: the ``top``
    best-scoring ones are measured in order of score until one is within the target; if none
    is, the ``top`` predicted fastest of the rest are measured and the best-scoring within the
    target wins; if still none, the fastest measured (``within`` False)."""
    base_run = runtime.runnable(model, graph.input_size, batch)
    out = Verified(index=-1)
    bar = Progress(2 * top, f"latency budget checked on {runtime.name} at batch {batch}", "policy")

    def measure(i: int) -> bool:
        run = runtime.runnable(pruned_copy(model, graph, candidates[i].keep), graph.input_size, batch)
        out.measured[i] = measure_ratio(base_run, run, rounds=ROUNDS)
        if out.measured[i] <= target:  # confirmed, or not, by a second measurement
            out.measured[i] = max(out.measured[i], measure_ratio(base_run, run, rounds=ROUNDS))
        bar.update(1)
        return out.measured[i] <= target

    first = next((i for i in _by_score(candidates, top) if measure(i)), None)
    if first is None:
        for i in _by_speed(candidates, top, list(out.measured)):
            measure(i)
    bar.close()
    within = [j for j in out.measured if out.measured[j] <= target]
    if within:
        out.index = max(within, key=lambda j: (candidates[j].score, -out.measured[j]))
        return out
    out.index = min(out.measured, key=out.measured.__getitem__)
    out.within = False
    return out
