"""What every searcher shares: the base, its units, the budget, the proxy, and how a kept
channel vector becomes a :class:`~amc.policy.Policy`.

Searchers only decide *which* kept-channel vector to try; they all score it through the same
:class:`~amc.proxy.ProxyEvaluator` (never four copies of the evaluation loop).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from amc.base import Base, open_base
from amc.models import get_spec
from amc.policy import Policy, provenance
from amc.proxy import ProxyConfig, ProxyEvaluator
from amc.pruning.budget import Budget
from amc.pruning.cost import CostModel
from amc.pruning.units import UnitGraph
from amc.runtime import Runtime

__all__ = ["SearchSettings", "SearchContext", "build_context"]


@dataclass(frozen=True)
class SearchSettings:
    """Everything that defines a search problem (and so a study): model, data, budget, proxy."""

    model: str
    data: str
    checkpoint: str | None = None
    target: float = 0.5
    kind: str = "macs"  # macs, params or latency
    runtime: str = "onnxruntime"  # where a latency budget is measured ...
    latency_batch: int = 1  # ... and at which batch size
    max_sparsity: float = 0.8
    round_to: int | str = 1  # or "auto": measured on runtime at latency_batch
    residual: bool = False
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    seed: int = 0
    trust_checkpoint: bool = False
    allow_train: bool = True
    unstructured: bool = False  # the budget counts non-zero weights; channel units stay whole

    @property
    def budget_name(self) -> str:
        """``macs``, ``params``, or ``RUNTIME-bBATCH-latency`` (names studies: ``...-latency0.6-...``)."""
        return f"{self.runtime}-b{self.latency_batch}-latency" if self.kind == "latency" else self.kind


@dataclass
class SearchContext:
    settings: SearchSettings
    base: Base
    graph: UnitGraph
    budget: Budget
    proxy: ProxyEvaluator

    def policy(self, keep: np.ndarray, method: str, metrics: dict[str, Any] | None = None) -> Policy:
        """A policy file's content for kept channel counts ``keep``."""
        macs_ratio, params_ratio = self.budget.ratios(keep)
        sparsity = self.budget.sparsity(keep)
        b = self.budget
        return Policy(
            model=self.settings.model,
            checkpoint={"path": str(self.base.checkpoint), "sha256": self.base.checkpoint_sha256},
            dataset=self.base.data.name,
            data=self.base.data.identity(),
            budget={
                **(
                    {"runtime": self.settings.runtime, "batch_size": self.settings.latency_batch}
                    if b.kind == "latency"
                    else {}
                ),
                "kind": b.kind,
                "target": b.target,
                "max_sparsity": b.max_sparsity,
                "round_to": b.round_to,
                "used": b.ratio(keep) / b.target,
            },
            achieved={
                "macs_ratio": macs_ratio,
                "params_ratio": params_ratio,
                "macs": macs_ratio * self.graph.base_macs,
                "params": params_ratio * self.graph.base_params,
            },
            sparsity={u.name: float(s) for u, s in zip(self.graph.units, sparsity)},
            method=method,
            criterion=self.settings.proxy.criterion,
            reconstruct=self.settings.proxy.reconstruct,
            residual=self.settings.residual,
            metrics=dict(metrics or {}),
            provenance=provenance(self.settings.seed),
        )

    def tightened(self, target: float) -> SearchContext:
        """The same search under a smaller ``target`` of the same cost model (an unreachable one
        raises :class:`~amc.errors.AmcError`)."""
        b = self.budget
        budget = Budget(self.graph, target, b.kind, b.max_sparsity, b.round_to, b.check_reachable, b.cost)
        return replace(self, settings=replace(self.settings, target=target), budget=budget)


def unit_graph_for(model_name: str, base: Base, residual: bool) -> UnitGraph:
    spec = get_spec(model_name)
    if residual and not spec.residual_ok:
        from amc.errors import AmcError

        raise AmcError(
            f"--residual is not supported on {model_name}: its zero-padding shortcut is "
            "grouped wrongly by the dependency graph; prune block interiors only (drop --residual)"
        )
    c, h, w = base.data.train.images.shape[1:]
    return UnitGraph(
        base.model, (int(c), int(h), int(w)), rule=spec.unit_rule, residual=residual, classifier=spec.classifier
    )


def _latency_cost(settings: SearchSettings, base: Base, graph: UnitGraph, round_to: int = 1) -> CostModel:
    """The measured-latency cost model (its table measured once per machine and rounding, and cached)."""
    from amc.data import cache_dir
    from amc.deploy.runtimes import get_runtime
    from amc.deploy.table import LatencyCost, latency_table

    runtime = get_runtime(settings.runtime)
    table = latency_table(
        base.model,
        graph,
        runtime,
        settings.latency_batch,
        cache=cache_dir() / "latency",
        max_sparsity=settings.max_sparsity,
        round_to=round_to,
    )
    return LatencyCost(graph, table)


LATENCY_REFERENCE_MACS = 0.5  # under a latency budget, --round-to auto times networks at this MACs budget


def _auto_round_to(settings: SearchSettings, base: Base, graph: UnitGraph) -> int:
    """``--round-to auto``: the multiple whose networks under this budget (the uniform one and
    three of random shapes) run fastest. Under a latency budget, the networks at half the MACs are
    timed instead: the latency table that would say what meets the budget is itself measured on
    the chosen multiple (a table of free counts misjudges aligned networks: on ResNet-56 at batch
    64 it called 0.6 unreachable where the uniform network rounded to 4 ran at 0.50)."""
    from amc.data import cache_dir
    from amc.deploy.rounding import choose_round_to
    from amc.deploy.runtimes import get_runtime
    from amc.search.baselines import shaped_keep_for

    kind, target = settings.kind, settings.target
    if kind == "latency":
        kind, target = "macs", LATENCY_REFERENCE_MACS
    rng = np.random.default_rng(0)
    shapes = [np.ones(len(graph.channels))] + [rng.uniform(0.25, 1.0, len(graph.channels)) for _ in range(3)]

    def keeps_for(m: int) -> list[np.ndarray]:
        b = Budget(graph, target, kind, settings.max_sparsity, m)
        return [shaped_keep_for(b, s) for s in shapes]

    choice = choose_round_to(base.model, graph, keeps_for, get_runtime(settings.runtime), settings.latency_batch,
                             budget_label=f"{kind}{target:g}-max{settings.max_sparsity:g}",
                             cache=cache_dir() / "latency")  # fmt: skip
    measured = ", ".join(f"{m}: {r:.3f}" for m, r in choice.ratios.items())
    where = f"{settings.runtime} at batch {settings.latency_batch}"
    print(f"--round-to auto: {choice.round_to} on {where} (mean latency of {len(shapes)} networks / unpruned at"
          f" {kind} {target:g}, per multiple: {measured})", file=sys.stderr)  # fmt: skip
    return choice.round_to


def build_context(settings: SearchSettings, runtime: Runtime) -> SearchContext:
    """Open the base, find its units, check the budget, prepare the proxy (choosing the channel
    criterion first when it is ``auto``: :mod:`amc.search.criterion_choice`)."""
    base = open_base(
        settings.model,
        settings.data,
        settings.checkpoint,
        runtime,
        trust=settings.trust_checkpoint,
        allow_train=settings.allow_train,
    )
    graph = unit_graph_for(settings.model, base, settings.residual)
    round_to = settings.round_to if isinstance(settings.round_to, int) else _auto_round_to(settings, base, graph)
    # the latency table is measured on the counts the search will make
    cost = _latency_cost(settings, base, graph, round_to) if settings.kind == "latency" else None
    budget = Budget(
        graph,
        settings.target,
        settings.kind,
        settings.max_sparsity,
        round_to,
        check_reachable=not settings.unstructured,
        cost=cost,
    )
    from amc.search.criterion_choice import AUTO, CANDIDATES, resolve_criterion

    config = settings.proxy
    probe = replace(config, criterion=CANDIDATES[0]) if config.criterion == AUTO else config
    proxy = ProxyEvaluator(base.model, graph, base.data, runtime, probe)
    return resolve_criterion(SearchContext(settings, base, graph, budget, proxy))
