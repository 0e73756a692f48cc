"""Run a job from its typed request: the one place the CLI and the service's workers share.

Each function takes a validated request (:mod:`amc.requests`), does the work, and returns what
the entrance prints or stores; none of them prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc.policy import Policy
from amc.presets import preset_run_settings
from amc.requests import ApplyRequest, CompareRequest, ExportRequest, SearchRequest, TrainRequest, data_spec
from amc.runtime import Runtime

if TYPE_CHECKING:
    from amc.search.context import SearchSettings
    from amc.search.runner import SearchRun

__all__ = ["search_settings", "search_run", "run_search_request", "run_apply", "run_compare", "run_train", "run_export"]


def search_settings(req: SearchRequest) -> SearchSettings:
    """The :class:`~amc.search.context.SearchSettings` (the problem: model, data, budget, proxy)."""
    from amc.proxy import ProxyConfig
    from amc.search.base import get_searcher
    from amc.search.context import SearchSettings

    kind, target = req.budget
    return SearchSettings(
        model=req.model,
        data=data_spec(req.data),
        checkpoint=req.checkpoint,
        target=float(target),
        kind=kind,
        runtime=req.runtime,
        latency_batch=req.batch_size,
        max_sparsity=req.max_sparsity,
        round_to=req.round_to,
        residual=req.residual,
        proxy=ProxyConfig(
            size=req.proxy_size,
            confirm=req.confirm_images,
            calib_images=req.calib_images,
            criterion=req.criterion,
            reconstruct=req.reconstruct,
            seed=req.seed,
        ),
        seed=req.seed,
        trust_checkpoint=req.trust_checkpoint,
        allow_train=req.train,
        unstructured=get_searcher(req.method).structure == "weights",
    )


def search_run(req: SearchRequest, progress: bool = True) -> SearchRun:
    """The :class:`~amc.search.runner.SearchRun` (how: searcher, episodes, storage, output)."""
    from amc.search.runner import SearchRun

    return SearchRun(
        method=req.method,
        episodes=req.episodes,
        warmup=req.warmup,
        reward=req.reward,
        storage=req.storage,
        study=req.study,
        resume=req.resume,
        out=Path(req.out),
        progress=progress,
        projection=req.projection,
        fill=req.fill,
        demos=tuple(req.demos),
        reference=tuple(req.reference),
        sigma=req.sigma,
        sigma_final=req.sigma_final,
        warmup_noise=req.warmup_noise,
        tpe_every=req.tpe_every,
        critics=req.critics,
        sigma_decay=req.sigma_decay,
        polish=req.polish,
        rescore=req.rescore,
        rescore_size=req.rescore_size,
    )


def run_search_request(
    req: SearchRequest,
    progress: bool = True,
    *,
    runs_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    default_threads: int | None = None,
) -> Policy:
    """Search as ``req`` says and write its best policy; returns the policy. The service's worker
    also sets where agent checkpoints go, a stop flag and its share of the cores."""
    from amc.search.base import get_searcher
    from amc.search.context import build_context
    from amc.search.criterion_choice import check_criterion
    from amc.search.runner import run_search

    get_searcher(req.method)  # unknown names fail before any work
    check_criterion(req.criterion)
    rt = Runtime.create(req.device, req.precision, req.threads or default_threads)
    ctx = build_context(search_settings(req), rt)
    run = replace(search_run(req, progress), should_stop=should_stop)
    return run_search(ctx, replace(run, runs_dir=runs_dir) if runs_dir is not None else run)


def run_apply(req: ApplyRequest) -> tuple[dict[str, Any], Path]:
    """Apply ``req.policy`` to its base; returns the metrics and the output folder."""
    from amc.apply import ApplyConfig, apply_policy, policy_checkpoint, policy_data
    from amc.base import open_base
    from amc.policy import load_policy
    from amc.search.context import unit_graph_for

    pol = load_policy(req.policy)
    rt = Runtime.create(req.device, req.precision, req.threads)
    ckpt = req.checkpoint or policy_checkpoint(pol)
    base = open_base(pol.model, policy_data(pol, req.data), ckpt, rt, trust=req.trust_checkpoint)
    graph = unit_graph_for(pol.model, base, pol.residual)
    out = Path(req.out) if req.out else Path("runs") / "apply" / Path(req.policy).stem
    cfg = ApplyConfig(
        finetune_epochs=req.finetune_epochs,
        lr=req.lr,
        distill=req.distill,
        calib_images=req.calib_images,
        latency=req.latency,
        seed=req.seed,
        criterion=req.criterion,
        iterative=req.iterative,
        onnx=req.onnx,
        curve=req.curve,
        distill_weight=req.distill_weight,
    )
    return apply_policy(pol, base, graph, cfg, out, force=req.force), out


def run_compare(req: CompareRequest, command: str | None = None) -> list[dict[str, Any]]:
    """Every method at every target; writes the tables and plots to ``req.out``."""
    from amc.compare import CompareConfig
    from amc.compare import run_compare as sweep
    from amc.proxy import ProxyConfig
    from amc.search.base import get_searcher
    from amc.search.context import SearchSettings
    from amc.search.criterion_choice import check_criterion

    check_criterion(req.criterion)  # an unknown name fails before any work
    for m in req.methods:
        if get_searcher(m).structure == "weights":
            from amc.errors import AmcError

            raise AmcError(f"method '{m}' prunes weights, not channels: compare takes channel searchers")
    rt = Runtime.create(req.device, req.precision, req.threads)
    kind, target = max(req.budgets, key=lambda b: b[1])  # the loosest: the base context's budget
    settings = SearchSettings(
        model=req.model,
        data=data_spec(req.data),
        checkpoint=req.checkpoint,
        target=target,
        kind=kind,
        max_sparsity=req.max_sparsity,
        residual=req.residual,
        proxy=ProxyConfig(size=req.proxy_size, calib_images=req.calib_images, criterion=req.criterion, seed=req.seed),
        seed=req.seed,
        allow_train=req.train,
    )
    cfg = CompareConfig(
        budgets=tuple(req.budgets),
        methods=tuple(req.methods),
        episodes=req.episodes,
        warmup=req.warmup,
        finetune_epochs=req.finetune_epochs,
        latency_seconds=req.latency_seconds,
        remeasure_latency=req.remeasure_latency,
        calib_images=req.measure_calib_images,
        runtimes=tuple(req.runtimes),
        search=preset_run_settings(req.preset),
    )
    return sweep(settings, rt, cfg, Path(req.out), storage=req.storage, command=command)


def run_train(req: TrainRequest) -> dict[str, Any]:
    """Train (or adapt) a base and save it where searches find it; returns what was measured."""
    import torch

    from amc.base import base_meta
    from amc.checkpoints import base_filename, checkpoint_dirs, load_weights, read_checkpoint, save_checkpoint
    from amc.data import load_data
    from amc.models import build_model
    from amc.training import TrainConfig, evaluate, train

    rt = Runtime.create(req.device, req.precision, req.threads)
    bundle = load_data(data_spec(req.data))
    net = build_model(req.model, bundle.num_classes)
    if req.init:
        state, _ = read_checkpoint(req.init, trust=req.trust_checkpoint)
        load_weights(net, state, source=f"checkpoint {req.init}")
    out = Path(req.out) if req.out else checkpoint_dirs()[-1] / base_filename(req.model, bundle.name)
    torch.manual_seed(req.seed)
    default_lr, default_ls = (0.02, 0.0) if req.init else (0.1, 0.1)
    cfg = TrainConfig(
        epochs=req.epochs,
        lr=req.lr if req.lr is not None else default_lr,
        label_smoothing=req.label_smoothing if req.label_smoothing is not None else default_ls,
        batch_size=req.batch_size,
        seed=req.seed,
    )
    rt.prepare(net)
    start = time.time()
    train(net, bundle.train, rt, cfg, desc=f"training {req.model}")
    seconds = time.time() - start
    held, test = evaluate(net, bundle.heldout, rt), evaluate(net, bundle.test, rt)
    save_checkpoint(out, net, base_meta(req.model, bundle, cfg, req.init, seconds, held, test))
    return {
        "dataset": bundle.name,
        "heldout": held,
        "test": test,
        "seconds": seconds,
        "out": out,
        "precision": rt.precision,
        "epochs": req.epochs,
    }


def run_export(req: ExportRequest) -> dict[str, Any]:
    """Export ``req.source`` as ``req.format``; returns what was written and checked."""
    from amc.export import export_model, load_network

    net, size, what = load_network(req.source, req.model, req.trust_checkpoint)
    out = Path(req.out) if req.out else Path(req.source).with_suffix("." + req.format)
    return {"source": req.source, "network": what, **export_model(net, size, out, req.format)}
