"""``--round-to auto``: the channel multiple whose networks run fastest on the runtime a user ships
with, chosen by measuring whole networks, not guessed.

Kernels of a runtime run some channel counts faster than others (vectorised blocks of 8 or 16,
cache lines, layout conversions): a pruned MobileNetV2 can run slower on onnxruntime than the
unpruned one at odd counts. Per-layer tables miss this, since the effect shows in the whole
graph (see ``docs/LATENCY.md``). So each candidate multiple ``m`` is judged on the network a
search would make under the same budget: the uniform policy and a few non-uniform ones with
counts rounded up to ``m`` (the budget still holds: each policy is fitted with the rounding), cut
out and timed against the unpruned network, back to back (:func:`~amc.deploy.table.measure_ratio`);
a multiple's ratio is their mean. The uniform network alone misleads: its counts are often aligned
by chance, so on ResNet-56 on onnxruntime at batch 64 multiples 1 to 8 all timed 0.59-0.62, and a
search on multiple 2 that followed made non-uniform networks that ran at 0.76. The smallest multiple
within ``TIE`` of the fastest wins, since smaller multiples leave a search more policies.
Choices are cached per network, budget, runtime, batch and machine under ``$AMC_CACHE/latency``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from amc.checkpoints import atomic_write_bytes
from amc.deploy.runtimes import InferenceRuntime
from amc.deploy.table import cache_file, machine_key, measure_ratio, pruned_copy
from amc.errors import AmcError
from amc.progress import Progress
from amc.pruning.units import UnitGraph

__all__ = ["CANDIDATES", "TIE", "RoundingChoice", "choose_round_to"]

CANDIDATES = (1, 2, 4, 8, 16, 32)
TIE = 0.03  # measured ratios this close to the fastest count as equally fast


@dataclass(frozen=True)
class RoundingChoice:
    """``round_to``: the chosen multiple; ``ratios``: each candidate's mean measured latency of its
    networks over the unpruned one (candidates whose rounding cannot meet the budget are
    left out)."""

    round_to: int
    ratios: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"round_to": self.round_to, "ratios": {str(k): v for k, v in self.ratios.items()}})

    @classmethod
    def from_json(cls, text: str) -> RoundingChoice:
        d = json.loads(text)
        return cls(int(d["round_to"]), {int(k): float(v) for k, v in d["ratios"].items()})


def pick(ratios: dict[int, float], tie: float = TIE) -> int:
    """The smallest multiple whose ratio is within ``tie`` of the fastest."""
    fastest = min(ratios.values())
    return min(m for m, r in ratios.items() if r <= fastest * (1 + tie))


def choose_round_to(
    model: nn.Module,
    graph: UnitGraph,
    keeps_for: Callable[[int], Sequence[np.ndarray]],
    runtime: InferenceRuntime,
    batch: int,
    *,
    budget_label: str,
    cache: Path | None = None,
    candidates: Sequence[int] = CANDIDATES,
    rounds: int = 3,
    networks: int = 4,
) -> RoundingChoice:
    """Measure the networks ``keeps_for(m)`` (kept channels per unit under the budget, rounded to
    ``m``; the first ``networks`` of them) for each candidate ``m`` on ``runtime`` at ``batch``;
    ``budget_label`` names the budget in the cache key (e.g. ``macs0.5``)."""
    key: dict[str, Any] = {**machine_key(runtime, batch, graph), "what": "round-to", "budget": budget_label,
                           "candidates": list(candidates), "tie": TIE, "networks": networks}  # fmt: skip
    path = cache_file(cache, key, "round-to-")
    if path is not None and path.is_file():
        return RoundingChoice.from_json(path.read_text())
    base_run = runtime.runnable(model, graph.input_size, batch)
    ratios: dict[int, float] = {}
    errors: list[AmcError] = []
    bar = Progress(len(candidates), f"--round-to auto ({runtime.name}, batch {batch})", "multiple")
    for m in candidates:
        try:
            keeps = list(keeps_for(m))[:networks]
        except AmcError as e:  # this rounding cannot meet the budget
            keeps = []
            errors.append(e)
        if keeps:
            runs = [runtime.runnable(pruned_copy(model, graph, k), graph.input_size, batch) for k in keeps]
            ratios[m] = float(np.mean([measure_ratio(base_run, run, rounds=rounds) for run in runs]))
        bar.update(1)
    bar.close()
    if not ratios:  # the finest rounding's reason (an unreachable target names the smallest reachable one)
        raise errors[0]
    choice = RoundingChoice(pick(ratios), ratios)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, choice.to_json().encode())
    return choice
