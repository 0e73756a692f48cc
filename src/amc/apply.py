"""Apply a policy for real: check it against the base, cut the channels, recalibrate,
fine-tune (optionally distilling from the unpruned base), measure, and save a pruned model
that loads on its own.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from amc.base import Base
from amc.checkpoints import atomic_write_bytes
from amc.errors import AmcError
from amc.macs import count_macs, count_params
from amc.policy import Policy
from amc.pruned import save_pruned
from amc.pruning.budget import kept_channels
from amc.pruning.build import BuildConfig, NetworkBuilder
from amc.pruning.units import UnitGraph
from amc.training import TrainConfig, evaluate

__all__ = ["ApplyConfig", "check_policy", "policy_keep", "apply_policy"]


@dataclass(frozen=True)
class ApplyConfig:
    """Fine-tuning (``finetune_epochs`` of cosine LR from ``lr``; ``distill`` adds knowledge
    distillation from the unpruned base), BN recalibration images, latency on or off.
    ``criterion`` overrides the policy's channel criterion; ``iterative`` > 1 reaches the policy
    in that many cuts, re-scoring channels before each and spending ``finetune_epochs /
    iterative`` fine-tuning after each (the same total training as one-shot)."""

    finetune_epochs: float = 1.0
    lr: float = 0.01
    distill: bool = False
    calib_images: int = 2000
    latency: bool = True
    seed: int = 0
    criterion: str | None = None
    iterative: int = 1
    onnx: bool = False  # also write pruned.onnx (amc apply's default is on)
    curve: bool = True  # score held-out and test after every fine-tuning epoch (curve.json)
    distill_weight: float = 0.7  # the KL term's share of the loss when distilling


def check_policy(policy: Policy, base: Base, graph: UnitGraph, *, force: bool = False) -> None:
    """Refuse a policy made for another model, checkpoint, data set or set of units."""
    if policy.model != base.model_name:
        raise AmcError(
            f"the policy is for model '{policy.model}', not '{base.model_name}': pass --model {policy.model}"
        )
    if policy.structure == "weights":
        from amc.pruning.unstructured import weight_layers

        names = {n for n, _ in weight_layers(base.model)}
    else:
        names = set(graph.names())
    unknown = sorted(set(policy.sparsity) - names)
    if unknown:
        raise AmcError(f"the policy names module '{unknown[0]}', which is not a prunable unit of {base.model_name}")
    missing = sorted(names - set(policy.sparsity))
    if missing:
        raise AmcError(f"the policy has no sparsity for unit '{missing[0]}' of {base.model_name}: regenerate it")
    if force:
        return
    sha = policy.checkpoint.get("sha256")
    if sha and base.checkpoint_sha256 and sha != base.checkpoint_sha256:
        raise AmcError(
            f"the policy was made for checkpoint {policy.checkpoint.get('path')} (sha256 {sha[:12]}...),"
            f" not {base.checkpoint}: pass that --checkpoint, or --force to apply it anyway"
        )
    fingerprint = policy.data.get("fingerprint")
    same_files = bool(fingerprint) and fingerprint == base.data.fingerprint
    if not force and policy.dataset != base.data.name and not same_files:
        raise AmcError(
            f"the policy was made on data set '{policy.dataset}', not '{base.data.name}': "
            "pass the same --data, or --force"
        )
    if not force and fingerprint and base.data.fingerprint and not same_files:
        raise AmcError(
            f"the data set at {base.data.spec} is named '{base.data.name}' but holds other files than the one "
            "the policy was searched on: pass the same --data, or --force"
        )


def _check_config(policy: Policy, cfg: ApplyConfig) -> None:
    from amc.pruning.criteria import get_criterion

    if cfg.criterion is not None:
        get_criterion(cfg.criterion)
    if cfg.iterative < 1:
        raise AmcError(f"--iterative must be at least 1 (got {cfg.iterative})")
    if cfg.iterative > 1 and policy.structure == "weights":
        raise AmcError("--iterative applies to channel policies; this policy prunes individual weights")
    if cfg.iterative > 1 and cfg.distill:
        raise AmcError("--iterative does not combine with --distill: drop one of them")
    if policy.reconstruct and (cfg.iterative > 1 or cfg.criterion):
        raise AmcError(
            "this policy uses reconstruction, which is fitted to its own criterion: drop --iterative/--criterion"
        )


def policy_keep(policy: Policy, graph: UnitGraph) -> np.ndarray:
    """Kept channels per unit (in the graph's order) for the policy's sparsities."""
    sparsity = np.array([policy.sparsity[n] for n in graph.names()])
    return kept_channels(sparsity, graph.channels.astype(np.int64), int(policy.budget.get("round_to", 1)))


def _measure(net: nn.Module, base: Base, prefix: str, splits: tuple[str, ...] = ("heldout", "test")) -> dict[str, Any]:
    return {f"{prefix}{s}_acc": evaluate(net, base.data.split(s), base.runtime) for s in splits}


def apply_policy(
    policy: Policy,
    base: Base,
    graph: UnitGraph,
    cfg: ApplyConfig,
    out_dir: Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Prune ``base`` with ``policy``, fine-tune, measure, and write ``out_dir``/{pruned.pt,
    metrics.json, policy.json}. Returns the metrics."""
    check_policy(policy, base, graph, force=force)
    _check_config(policy, cfg)
    rt = base.runtime
    t0 = time.time()
    net, keep = _cut(policy, base, graph, cfg)
    metrics: dict[str, Any] = {
        "policy_method": policy.method,
        "model": base.model_name,
        "dataset": base.data.name,
        "macs_ratio": count_macs(net, graph.input_size) / graph.base_macs,
        "params_ratio": count_params(net) / graph.base_params,
        "macs": count_macs(net, graph.input_size),
        "params": count_params(net),
        "config": asdict(cfg),
        "precision": rt.precision,
    }
    metrics.update(_measure(base.model, base, "base_"))
    metrics.update(_measure(net, base, "pruned_"))
    net, curve = _finetune(net, policy, base, graph, keep, cfg, out_dir)
    if curve and {"heldout_acc", "test_acc"} <= set(curve[-1]):  # the last epoch's scores are the final ones
        metrics.update({f"finetuned_{s}_acc": curve[-1][f"{s}_acc"] for s in ("heldout", "test")})
    elif cfg.iterative > 1 or cfg.finetune_epochs > 0:
        metrics.update(_measure(net, base, "finetuned_"))
    if curve:
        metrics["curve"] = curve
        metrics["finetune_seconds"] = curve[-1]["seconds"]
    if policy.structure == "weights":
        from amc.pruning.unstructured import make_permanent, nonzero_fraction

        make_permanent(net)
        metrics["nonzero_weight_fraction"] = nonzero_fraction(net)
        metrics["note"] = "unstructured: zeros give no dense speed-up (same shapes, same MACs)"
    if cfg.onnx:
        from amc.export import export_model

        metrics["onnx"] = export_model(net, graph.input_size, out_dir / "pruned.onnx", "onnx")
    if cfg.latency:
        metrics.update(_latencies(base.model, net, base, graph, out_dir / "pruned.onnx" if cfg.onnx else None))
    metrics["seconds"] = round(time.time() - t0, 1)
    _save(out_dir, net, policy, base, graph, keep, metrics)
    return metrics


def _latencies(
    model: nn.Module, net: nn.Module, base: Base, graph: UnitGraph, onnx_file: Path | None
) -> dict[str, float]:
    """Median milliseconds at batch 1 and 64 of the base and the pruned network on the job's torch
    runtime, on the other torch runtime (``base_latency_torch-bf16_b1_ms``, ... when the job runs
    fp32) and, when the ONNX file was written, on onnxruntime (warm-up excluded)."""
    from amc.deploy.measure import runtime_latencies
    from amc.deploy.runtimes import OnnxRuntime, median_seconds
    from amc.latency import measure_latency  # imports torch.utils.benchmark: only when used

    out: dict[str, float] = {}
    ort = OnnxRuntime() if onnx_file is not None and onnx_file.is_file() else None
    base_onnx = ort.to_onnx(model, graph.input_size) if ort is not None else b""  # exported once
    pruned_onnx = onnx_file.read_bytes() if ort is not None and onnx_file is not None else b""  # read once
    for bs in (1, 64):
        out[f"base_latency_b{bs}_ms"] = 1e3 * measure_latency(model, base.runtime, bs, graph.input_size)
        out[f"pruned_latency_b{bs}_ms"] = 1e3 * measure_latency(net, base.runtime, bs, graph.input_size)
        if ort is not None and onnx_file is not None:
            base_run = ort.runnable_onnx(base_onnx, (bs, *graph.input_size))
            out[f"base_onnxruntime_b{bs}_ms"] = 1e3 * median_seconds(base_run, min_time=0.5)
            run = ort.runnable_onnx(pruned_onnx, (bs, *graph.input_size))
            out[f"pruned_onnxruntime_b{bs}_ms"] = 1e3 * median_seconds(run, min_time=0.5)
    other = ["torch-fp32" if base.runtime.precision == "bf16" else "torch-bf16"]
    for who, m in (("base", model), ("pruned", net)):
        out |= {f"{who}_{k}": v for k, v in runtime_latencies(m, graph.input_size, other).items()}
    return out


def _cut(policy: Policy, base: Base, graph: UnitGraph, cfg: ApplyConfig) -> tuple[nn.Module, np.ndarray]:
    """The one-shot pruned, recalibrated network (masks for a weight policy) and kept counts."""
    config = BuildConfig(
        criterion=cfg.criterion or policy.criterion,
        calib_images=cfg.calib_images,
        reconstruct=policy.reconstruct,
        seed=cfg.seed,
    )
    builder = NetworkBuilder(base.model, graph, base.data, base.runtime, config)
    if policy.structure == "weights":
        import copy

        from amc.pruning import unstructured

        net = unstructured.apply_masks(copy.deepcopy(base.model), policy.sparsity)
        return builder.recalibrate(net), graph.channels.astype(int)
    keep = policy_keep(policy, graph)
    return builder.build(keep), keep


def _finetune(
    net: nn.Module, policy: Policy, base: Base, graph: UnitGraph, keep: np.ndarray, cfg: ApplyConfig, out_dir: Path
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Fine-tune ``net`` (or, with ``cfg.iterative`` > 1, rebuild it in steps from the base);
    returns it and the per-epoch curve (empty when there is none)."""
    rt = base.runtime
    if cfg.iterative > 1:
        from amc.iterative import IterativeConfig, prune_iteratively

        icfg = IterativeConfig(
            steps=cfg.iterative,
            epochs_per_step=cfg.finetune_epochs / cfg.iterative,
            criterion=cfg.criterion or policy.criterion,
            lr=cfg.lr,
            calib_images=cfg.calib_images,
            seed=cfg.seed,
        )
        return prune_iteratively(base.model, graph, keep, base.data, rt, icfg), []
    if cfg.finetune_epochs <= 0:
        return net, []
    from amc.finetuning import FinetuneJob, run_finetune

    tcfg = TrainConfig(
        epochs=cfg.finetune_epochs,
        lr=cfg.lr,
        schedule="cosine",
        seed=cfg.seed,
        distill_weight=cfg.distill_weight if cfg.distill else 0.0,
    )
    training = {k: v for k, v in asdict(cfg).items() if k not in ("latency", "onnx", "curve")}
    job = FinetuneJob(
        cfg=tcfg,
        train_split=base.data.train,
        runtime=rt,
        out_dir=out_dir,
        identity={"policy": policy.to_json(), "checkpoint": base.checkpoint_sha256, "config": training},
        splits={"heldout": base.data.split("heldout"), "test": base.data.split("test")},
        teacher=base.model if cfg.distill else None,
        curve=cfg.curve,
    )
    return net, run_finetune(net, job)


def _save(
    out_dir: Path,
    net: nn.Module,
    policy: Policy,
    base: Base,
    graph: UnitGraph,
    keep: np.ndarray,
    metrics: dict[str, Any],
) -> None:
    meta = {
        "model": base.model_name,
        "num_classes": base.data.num_classes,
        "keep": [int(k) for k in keep],
        "residual": policy.residual,
        "input_size": list(graph.input_size),
        "dataset": base.data.name,
        "policy": json.loads(policy.to_json()),
        "metrics": metrics,
    }
    save_pruned(out_dir / "pruned.pt", net, meta)
    atomic_write_bytes(out_dir / "policy.json", policy.to_json().encode())
    atomic_write_bytes(out_dir / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())


def policy_checkpoint(pol: Policy) -> str:
    """The policy's checkpoint path if it exists, else a base with the same sha256 found in
    $AMC_CHECKPOINTS / the cache (policies stay valid when files move between machines)."""
    from amc.checkpoints import checkpoint_dirs, sha256_file

    path = pol.checkpoint.get("path")
    if path and Path(path).is_file():
        return str(path)
    sha = pol.checkpoint.get("sha256")
    for folder in checkpoint_dirs():
        for candidate in sorted(folder.glob(f"{pol.model}-*.pt")) if folder.is_dir() else []:
            if sha and sha256_file(candidate) == sha:
                return str(candidate)
    raise AmcError(
        f"the policy's checkpoint {path} does not exist and no base with its sha256 is in "
        "$AMC_CHECKPOINTS: pass --checkpoint PATH"
    )


def policy_data(pol: Policy, override: str | None) -> str:
    """Where the policy's data set is: ``--data`` if given, else where the policy was searched
    (recorded in the policy), else $AMC_DATA if it holds the same data set."""
    import os

    if override:
        return override
    spec = str(pol.data.get("spec") or "")
    if spec in ("cifar10", "cifar100") or (spec and Path(spec).is_dir()):
        return spec
    env = os.environ.get("AMC_DATA")
    if env and (Path(env).name == pol.dataset or env == pol.dataset):
        return env
    where = f" was at {spec}, which no longer exists" if spec else " is not recorded in the policy"
    raise AmcError(f"the policy's data set '{pol.dataset}'{where}: pass --data PATH_TO_{pol.dataset}")
