"""Run one searcher end to end: open its study, let it search, write the best policy.

Every evaluated policy goes to the study, so a stopped search resumes with nothing completed
lost, and ``amc compare`` can reuse it. The searchers themselves are in the registry
(:mod:`amc.search.base`); this module knows none of them by name.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from amc.errors import AmcError
from amc.policy import Policy, save_policy
from amc.presets import DEFAULT_REFERENCE
from amc.proxy import proxy_identity
from amc.search import baselines
from amc.search import study as studies
from amc.search.base import Searcher, SearchSession, get_searcher
from amc.search.context import SearchContext
from amc.search.rescore import rescore_best

__all__ = ["SearchRun", "run_search"]


@dataclass(frozen=True)
class SearchRun:
    """How to run a search: searcher, episode counts, reward, environment settings, where the
    trials and the policy go. Built from a :class:`~amc.requests.SearchRequest`."""

    method: str = "ddpg"
    episodes: int = 400
    warmup: int = 100
    reward: str = "acc"
    storage: str | None = None
    study: str | None = None
    resume: bool = False
    out: Path = Path("policies/best.json")
    runs_dir: Path = Path("runs")
    progress: bool = True
    projection: str = "spread"
    fill: bool = True
    demos: tuple[str, ...] = ()
    reference: tuple[str, ...] = tuple(DEFAULT_REFERENCE)  # DDPG scores them first; the best centres the projection
    sigma: float = 0.5  # the exploration noise ([-1, 1] action scale; AMC's 1.0)
    sigma_final: float = 0.1
    warmup_noise: str = "tpe"  # warm-up episodes proposed by TPE (amc.search.warmup; AMC's: "uniform")
    tpe_every: int = 0  # after the warm-up, every N-th episode is proposed by TPE too (0: none)
    critics: int = 1  # 2: TD3's twin critics, delayed actor updates and target smoothing
    sigma_decay: float | None = None  # None: decay to ``sigma_final`` at the last episode (AMC's: x0.95 per episode)
    polish: int = 0  # the last N episodes hill-climb by channel swaps from the best policy (amc.search.polish)
    rescore: int = 8  # the best N policies are scored again on unseen held-out images (amc.search.rescore)
    rescore_size: int = 4000  # 2,000 could not separate near-ties (docs/experiments/resnet56-reference-0.3)
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)  # e.g. a cancelled service job


def _fingerprint(ctx: SearchContext, run: SearchRun) -> dict[str, Any]:
    s = ctx.settings
    return {
        "model": s.model,
        "dataset": ctx.base.data.name,
        "checkpoint_sha256": ctx.base.checkpoint_sha256,
        "kind": s.kind,
        "target": s.target,
        "max_sparsity": s.max_sparsity,
        "round_to": ctx.budget.round_to,  # the multiple --round-to auto chose, not "auto"
        "residual": s.residual,
        "proxy": proxy_identity(s.proxy),
        "method": run.method,
        "reward": run.reward,
        "projection": run.projection,
        "fill": run.fill,
        **_ddpg_settings(run),
        **_sensitivity_settings(run),
        "seed": s.seed,
        "precision": ctx.base.runtime.precision,
    }


# what changes the trials DDPG makes
# DDPG's agent settings as every study saved before they entered the fingerprint was made: a fingerprint
# names only those that differ from these (fixed, not the current defaults, so a study of an older default is
# never resumed under a newer one)
AGENT_BASELINE: dict[str, Any] = {"warmup": 100, "demos": (), "sigma": 1.0, "sigma_final": 0.1, "sigma_decay": 0.95,
                                  "critics": 1, "warmup_noise": "uniform", "polish": 0, "tpe_every": 0}  # fmt: skip


def _ddpg_settings(run: SearchRun) -> dict[str, Any]:
    """What only DDPG uses: its reference heuristics, and its agent settings that differ from
    :data:`AGENT_BASELINE` as ``{"agent": {...}}`` (left out when none differ, so the studies made
    before these entered the fingerprint still resume). Empty for every other searcher."""
    if run.method != "ddpg":
        return {}
    changed = {k: getattr(run, k) for k, v in AGENT_BASELINE.items() if getattr(run, k) != v}
    return {**({"reference": list(run.reference)} if run.reference else {}), **({"agent": changed} if changed else {})}


def _sensitivity_settings(run: SearchRun) -> dict[str, Any]:
    """What the sensitivity policy spends its budget by and where its scan scores the cuts, when the
    run uses that policy (as its method or a reference) and they are not the proxy's accuracy on the
    proxy's images, which every study before these choices was made with (so those still resume, and
    none resumes under another choice)."""
    uses = run.method == "sensitivity" or (run.method == "ddpg" and "sensitivity" in run.reference)
    metric, images = baselines.SCAN_METRIC, baselines.SCAN_IMAGES
    return {
        **({"sensitivity_by": metric} if uses and metric != "accuracy" else {}),
        **({"sensitivity_on": asdict(images)} if uses and images != baselines.ScanImages() else {}),
    }


def _open(ctx: SearchContext, run: SearchRun, searcher: Searcher) -> tuple[Any, str]:
    s = ctx.settings
    name = run.study or studies.default_study_name(s.model, ctx.base.data.name, s.budget_name, s.target, run.method)
    if not run.study and ctx.budget.round_to != 1:  # a rounded search is its own study, beside the free one
        name += f"-round{ctx.budget.round_to}"  # auto's choice: a study never mixes two roundings
    storage = studies.open_storage(run.storage, run.runs_dir)
    resume = run.resume or not searcher.learns  # a deterministic baseline reuses its one trial
    try:
        study = studies.open_study(
            storage, name, _fingerprint(ctx, run), resume=resume, sampler=searcher.sampler(s.seed)
        )
    except studies.StudyExists as exc:
        raise AmcError(exc.message_with_commands()) from None
    return study, name


def run_search(ctx: SearchContext, run: SearchRun) -> Policy:
    """Search with ``run.method`` and write the best policy to ``run.out``; returns it."""
    searcher = get_searcher(run.method)()
    if searcher.structure == "weights":
        session_policy = searcher.run(SearchSession(ctx, run, None, run.runs_dir))
        if session_policy is None:
            raise AssertionError(f"searcher {run.method} has no study and returned no policy")
        save_policy(session_policy, run.out)
        return session_policy
    study, name = _open(ctx, run, searcher)
    reused = bool(studies.completed(study)) and not searcher.learns
    start = time.time()
    searcher.run(SearchSession(ctx, run, study, run.runs_dir / name))
    best = studies.best_trial(study)
    if best is None:
        raise AmcError(f"study '{name}' has no evaluated policy yet: run the search again with --resume")
    done = studies.completed(study)
    measured: dict[str, Any] = {}
    if ctx.settings.kind == "latency":  # after a tightened second search, name and trials are that study's
        best, measured, name, done = _latency_checked(ctx, run, done, name)
    elif run.rescore and searcher.learns:
        found = rescore_best(ctx, done, run.rescore, run.rescore_size, run.runs_dir / name, run.reward)
        best, measured = found if found is not None else (best, {})
    metrics = {
        "heldout_proxy_acc": best.user_attrs["accuracy"],
        "reward": best.value,
        "reward_kind": run.reward,
        "trials": len(done),
        "best_trial": best.number,
        "study": name,
        "reused": reused,
        "search_seconds_this_run": round(time.time() - start, 1),
        "proxy": proxy_identity(ctx.settings.proxy),
        "base_heldout_proxy_acc": ctx.proxy.base_accuracy(),
        "precision": ctx.base.runtime.precision,
        **measured,
    }
    policy = ctx.policy(np.asarray(best.user_attrs["keep"]), run.method, metrics)
    save_policy(policy, run.out)
    return policy


def _measured_best(ctx: SearchContext, trials: list[Any]) -> tuple[Any, dict[str, Any]]:
    """Under a latency budget: the most rewarded policy whose latency, measured on the runtime,
    is within the budget (:func:`amc.deploy.verify.verify_latency`), and what was measured."""
    from amc.deploy.runtimes import get_runtime
    from amc.deploy.verify import Candidate, verify_latency

    unique = list({tuple(t.user_attrs["keep"]): t for t in trials}.values())  # one per distinct policy
    keeps = [np.asarray(t.user_attrs["keep"]) for t in unique]
    cands = [Candidate(k, float(t.value), ctx.budget.ratio(k)) for k, t in zip(keeps, unique)]
    s = ctx.settings
    v = verify_latency(ctx.base.model, ctx.graph, get_runtime(s.runtime), s.latency_batch, cands, s.target)
    return unique[v.index], {
        "measured_latency_ratio": v.measured[v.index],
        "measured_within_budget": v.within,
        "policies_measured": len(v.measured),
        # how much slower the measured policies ran than the latency table said (median; 1 = exact)
        "latency_table_bias": float(np.median([m / cands[i].predicted for i, m in v.measured.items()])),
    }


def _latency_checked(
    ctx: SearchContext, run: SearchRun, trials: list[Any], name: str
) -> tuple[Any, dict[str, Any], str, list[Any]]:
    """The best policy as measured on the runtime, with what was measured, and the study it is in
    (name and trials): a tightened second search's if none of the first was within the budget; a
    warning if still none is."""
    best, measured = _measured_best(ctx, trials)
    if not measured["measured_within_budget"]:
        again = _tightened(ctx, run, {**measured, "study": name, "trials": len(trials)})
        if again is not None:
            best, measured, name, trials = again
    if not measured["measured_within_budget"]:
        s = ctx.settings
        warnings.warn(f"no policy the search found measures within the latency budget {s.target:g} on {s.runtime} at"
                      f" batch {s.latency_batch} (the fastest measured: {measured['measured_latency_ratio']:.3f}); a"
                      " lower --latency or --round-to auto helps", stacklevel=3)  # fmt: skip
    return best, measured, name, trials


def _tightened(
    ctx: SearchContext, run: SearchRun, first: dict[str, Any]
) -> tuple[Any, dict[str, Any], str, list[Any]] | None:
    """When no policy of a latency search measures within its budget: one more search (its own
    study) under the budget divided by the latency table's measured bias, its policies checked
    against the budget asked (NetAdapt's measure-and-adjust, once). None when the tightened
    budget is unreachable or the table was not optimistic."""
    bias = first["latency_table_bias"]
    if bias <= 1.0:
        return None
    target = ctx.settings.target / bias
    try:
        tight = ctx.tightened(target)
    except AmcError:
        return None
    print(f"no policy measured within the latency budget {ctx.settings.target:g}: the latency table predicts"
          f" {bias:.3f}x too fast here; searching again at {target:.3f}", file=sys.stderr)  # fmt: skip
    searcher = get_searcher(run.method)()
    tight_run = replace(run, study=f"{run.study}-tightened" if run.study else None)
    study, name = _open(tight, tight_run, searcher)
    searcher.run(SearchSession(tight, tight_run, study, run.runs_dir / name))
    trials = studies.completed(study)
    best, measured = _measured_best(ctx, trials)  # checked against the budget asked
    return best, {**measured, "latency_tightened_to": target, "first_search": first}, name, trials
