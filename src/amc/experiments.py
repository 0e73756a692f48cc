"""Two of the comparisons practitioners weigh, as functions the notebooks and the ``bench/``
scripts share (the other three are ``amc compare`` sweeps):

- :func:`structured_vs_unstructured`: accuracy against the fraction of parameters removed, for
  whole channels cut (uniform structured pruning: a smaller, faster network) and for single
  weights zeroed (global magnitude pruning: same shapes, no dense speed-up), with and without
  a short fine-tuning;
- :func:`iterative_vs_oneshot`: one policy reached in one cut or in several cuts with short
  fine-tuning between them, with magnitude (L1) or Taylor channel scores, for the same total
  training;
- :func:`recovery_curves`: accuracy per fine-tuning epoch after structured and unstructured
  pruning at several rates (resumable: each run saves its state after every epoch).

Each returns a list of flat dict rows (accuracies are fractions in [0, 1]).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm import tqdm

from amc.base import Base
from amc.checkpoints import atomic_write_bytes
from amc.finetuning import CURVE_FILE, STATE_FILE, FinetuneJob, run_finetune
from amc.iterative import IterativeConfig, prune_iteratively
from amc.macs import count_macs, count_params
from amc.pruning import unstructured
from amc.pruning.budget import Budget
from amc.pruning.build import BuildConfig, NetworkBuilder
from amc.pruning.units import UnitGraph
from amc.search.baselines import uniform_keep_for
from amc.training import TrainConfig, evaluate, finetune

__all__ = ["structured_vs_unstructured", "iterative_vs_oneshot", "recovery_curves", "pruned_pair"]


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
        for kind, net in pruned_pair(base, graph, ev, s).items():
            row = {"kind": kind, "sparsity": s, **_size(net, kind, graph)}
            row["test_acc"] = evaluate(net, base.data.test, rt)
            tuned = s > 0 and finetune_epochs > 0  # the unpruned base is not fine-tuned
            if tuned:
                finetune(net, base.data.train, rt, finetune_epochs)
            row["ft_test_acc"] = evaluate(net, base.data.test, rt) if tuned else row["test_acc"]
            rows.append(row)
    return rows


def recovery_curves(
    base: Base,
    graph: UnitGraph,
    runs_dir: Path,
    sparsities: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8),
    epochs: int = 5,
    lr: float = 0.01,
    calib_images: int = 2000,
) -> list[dict[str, Any]]:
    """Accuracy per fine-tuning epoch (epoch 0: just pruned and recalibrated) of the
    :func:`pruned_pair` networks at each sparsity, ``epochs`` of SGD cosine from ``lr``. Each
    run keeps its state in ``runs_dir/KIND-S/`` after every epoch, so a stopped sweep continues
    where it stopped; finished runs are read back, not redone. One row per (kind, s, epoch)."""
    ev = NetworkBuilder(base.model, graph, base.data, base.runtime, BuildConfig(calib_images=calib_images))
    splits = {"heldout": base.data.heldout, "test": base.data.test}
    cfg = TrainConfig(epochs=epochs, lr=lr, schedule="cosine")
    rows: list[dict[str, Any]] = []
    for s in sparsities:
        for kind, net in pruned_pair(base, graph, ev, s).items():
            if s == 0 and kind == "unstructured":  # the same network as the structured one
                rows += [{**r, "kind": kind} for r in rows if r["sparsity"] == 0 and r["kind"] == "structured"]
                continue
            job = FinetuneJob(cfg, base.data.train, base.runtime, runs_dir / f"{kind}-{s:g}", splits=splits,
                              identity={"model": base.model_name, "checkpoint": base.checkpoint_sha256, "kind": kind,
                                        "sparsity": s, "recipe": asdict(cfg), "calib": calib_images})  # fmt: skip
            start = _start_point(job, net)
            curve = _finished_curve(job)
            if curve is None:
                curve = run_finetune(net, job, desc=f"{kind} s={s:g}")
            size = _size(net, kind, graph)
            rows += [{"kind": kind, "sparsity": s, **size, **p} for p in [start, *curve]]
    return rows


def _finished_curve(job: FinetuneJob) -> list[dict[str, Any]] | None:
    """The curve of a run that ended (all its epochs, its state file removed), else None."""
    path = job.out_dir / CURVE_FILE
    if not path.exists() or (job.out_dir / STATE_FILE).exists():
        return None
    curve: list[dict[str, Any]] = json.loads(path.read_text())
    return curve if len(curve) == int(job.cfg.epochs) else None


def _start_point(job: FinetuneJob, net: nn.Module) -> dict[str, Any]:
    """Epoch 0 of a recovery run: accuracy right after pruning (saved with the run)."""
    path = job.out_dir / "start.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    point = {"epoch": 0, "seconds": 0.0, **{f"{k}_acc": evaluate(net, v, job.runtime) for k, v in job.splits.items()}}
    job.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(point).encode())
    return point


def pruned_pair(base: Base, graph: UnitGraph, ev: NetworkBuilder, s: float) -> dict[str, nn.Module]:
    """The base with the fraction ``s`` of its parameters removed two ways: ``structured``, the
    uniform channel policy cut out of it; ``unstructured``, global weight magnitude masks (kept
    through fine-tuning by torch's pruning hooks), BatchNorm-recalibrated."""
    if s == 0:
        return {k: copy.deepcopy(base.model) for k in ("structured", "unstructured")}
    budget = Budget(graph, 1.0 - s, "params", max_sparsity=0.97, check_reachable=False)
    structured = ev.build(uniform_keep_for(budget))
    per_layer = unstructured.sparsities(base.model, 1.0 - s, "global")
    masked = unstructured.apply_masks(copy.deepcopy(base.model), per_layer)
    ev.recalibrate(masked)
    return {"structured": structured, "unstructured": masked}


def _size(net: nn.Module, kind: str, graph: UnitGraph) -> dict[str, float]:
    kept = count_params(net) / graph.base_params if kind == "structured" else unstructured.nonzero_fraction(net)
    return {"params_kept": kept, "macs_ratio": count_macs(net, graph.input_size) / graph.base_macs}


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
