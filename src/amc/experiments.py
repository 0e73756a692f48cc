"""Two of the comparisons practitioners weigh, as functions the notebooks and the ``bench/``
scripts share (the other three are ``amc compare`` sweeps):

- :func:`structured_vs_unstructured`: accuracy against the fraction of parameters removed, for
  whole channels cut (uniform structured pruning: a smaller, faster network) and for single
  weights zeroed (global magnitude pruning: same shapes, no dense speed-up), with and without
  a short fine-tuning;
- :func:`iterative_vs_oneshot`: one policy reached in one cut or in several cuts with short
  fine-tuning between them, with magnitude (L1) or Taylor channel scores, for the same total
  training.

Each returns a list of flat dict rows (accuracies are fractions in [0, 1]).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from amc.base import Base
from amc.iterative import IterativeConfig, prune_iteratively
from amc.macs import count_macs, count_params
from amc.pruning import unstructured
from amc.pruning.budget import Budget
from amc.pruning.build import BuildConfig, NetworkBuilder
from amc.pruning.units import UnitGraph
from amc.search.baselines import uniform_keep_for
from amc.training import evaluate, finetune

__all__ = ["structured_vs_unstructured", "iterative_vs_oneshot"]


def structured_vs_unstructured(
    base: Base,
    graph: UnitGraph,
    sparsities: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
    finetune_epochs: float = 0.3,
    calib_images: int = 2000,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """For each fraction ``s`` of parameters to remove: the uniform channel policy keeping at
    most ``1 - s`` of the parameters, and global magnitude pruning keeping ``1 - s`` of the
    conv/linear weights non-zero; test accuracy before and after ``finetune_epochs`` (both
    BatchNorm-recalibrated on ``calib_images`` training images before measuring)."""
    rt = base.runtime
    ev = NetworkBuilder(base.model, graph, base.data, rt, BuildConfig(calib_images=calib_images))
    rows = []
    for s in tqdm(sparsities, desc="sparsities", disable=not progress or None):
        keep_fraction = 1.0 - s
        if s == 0:
            structured = copy.deepcopy(base.model)
        else:
            budget = Budget(graph, keep_fraction, "params", max_sparsity=0.97, check_reachable=False)
            structured = ev.build(uniform_keep_for(budget))
        per_layer = unstructured.sparsities(base.model, keep_fraction, "global")
        masked = unstructured.apply_masks(copy.deepcopy(base.model), per_layer)
        if s > 0:
            ev.recalibrate(masked)
        for kind, net in (("structured", structured), ("unstructured", masked)):
            row = {
                "kind": kind,
                "sparsity": s,
                "params_kept": (
                    count_params(net) / graph.base_params
                    if kind == "structured"
                    else unstructured.nonzero_fraction(net)
                ),
                "macs_ratio": count_macs(net, graph.input_size) / graph.base_macs,
                "test_acc": evaluate(net, base.data.test, rt),
            }
            if s > 0 and finetune_epochs > 0:
                finetune(net, base.data.train, rt, finetune_epochs)
            row["ft_test_acc"] = evaluate(net, base.data.test, rt)
            rows.append(row)
    return rows


def iterative_vs_oneshot(
    base: Base,
    graph: UnitGraph,
    keep: np.ndarray,
    steps: int = 4,
    finetune_epochs: float = 0.4,
    criteria: Sequence[str] = ("l1", "taylor"),
    calib_images: int = 2000,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The network with ``keep`` channels per unit, reached one-shot (cut, then
    ``finetune_epochs``) and iteratively (``steps`` cuts, ``finetune_epochs / steps`` after
    each), for each channel criterion: held-out and test accuracy after the training."""
    rt = base.runtime
    rows = []
    runs = [(c, k) for c in criteria for k in (1, steps)]
    for criterion, k in tqdm(runs, desc="schedules", disable=not progress or None):
        cfg = IterativeConfig(
            steps=k, epochs_per_step=finetune_epochs / k, criterion=criterion, calib_images=calib_images
        )
        net = prune_iteratively(base.model, graph, keep, base.data, rt, cfg)
        rows.append(
            {
                "schedule": "one-shot" if k == 1 else f"iterative x{k}",
                "criterion": criterion,
                "steps": k,
                "finetune_epochs": finetune_epochs,
                "macs_ratio": count_macs(net, graph.input_size) / graph.base_macs,
                "params_ratio": count_params(net) / graph.base_params,
                "heldout_acc": evaluate(net, base.data.heldout, rt),
                "test_acc": evaluate(net, base.data.test, rt),
            }
        )
    return rows
