"""Run one search method end to end: open the study, search, write the best policy.

Methods: ``ddpg`` (AMC), ``optuna`` (TPE), ``random``, and the engine's baselines
``uniform``, ``global`` and ``sensitivity``. Every evaluated policy goes to the study, so a
stopped search resumes with nothing completed lost, and ``amc compare`` can reuse it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import optuna
from tqdm import tqdm

from amc.env import PruningEnv
from amc.errors import AmcError
from amc.policy import Policy, save_policy
from amc.search import study as studies
from amc.search.context import SearchContext

__all__ = ["METHODS", "SearchRun", "run_search"]

METHODS = ("ddpg", "optuna", "random", "uniform", "global", "sensitivity", "unstructured-local", "unstructured-global")
LEARNED = ("ddpg", "optuna", "random")


@dataclass(frozen=True)
class SearchRun:
    """How to run a search: method, episode counts, reward, where trials and the policy go."""

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
    demos: tuple[str, ...] = ("uniform", "global")
    sigma_final: float = 0.1
    sigma_decay: float | None = None


def _fingerprint(ctx: SearchContext, run: SearchRun) -> dict:
    s = ctx.settings
    return {
        "model": s.model,
        "dataset": ctx.base.data.name,
        "checkpoint_sha256": ctx.base.checkpoint_sha256,
        "kind": s.kind,
        "target": s.target,
        "max_sparsity": s.max_sparsity,
        "round_to": s.round_to,
        "residual": s.residual,
        "proxy": asdict(s.proxy),
        "method": run.method,
        "reward": run.reward,
        "projection": run.projection,
        "fill": run.fill,
        "seed": s.seed,
        "precision": ctx.base.runtime.precision,
    }


def make_env(ctx: SearchContext, run: SearchRun) -> PruningEnv:
    return PruningEnv(
        ctx.budget, lambda keep: ctx.proxy.evaluate(keep).accuracy, run.reward, run.projection, run.fill
    )


def demonstrations(ctx: SearchContext, names: tuple[str, ...]) -> list[np.ndarray]:
    """Per-unit sparsities of the named heuristic policies, for DDPG's warm-up."""
    from amc.search import baselines

    fns = {"uniform": baselines.uniform_keep, "global": baselines.global_keep, "sensitivity": baselines.sensitivity_keep}
    return [ctx.budget.sparsity(fns[n](ctx)) for n in names]


class _Progress:
    def __init__(self, total: int, done: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=done, desc=desc, unit="episode", disable=not enabled or None)
        self.best = -np.inf

    def update(self, reward: float, accuracy: float) -> None:
        if reward > self.best:
            self.best, self.best_acc = reward, accuracy
        self.bar.update(1)
        self.bar.set_postfix(best_reward=f"{self.best:.4f}", best_acc=f"{self.best_acc:.2%}")

    def close(self) -> None:
        self.bar.close()


def _run_ddpg(ctx: SearchContext, run: SearchRun, study: optuna.Study, folder: Path) -> None:
    from amc.search.ddpg import AgentCheckpoint, EpisodeCallback, make_agent

    from amc.search.ddpg import DDPGConfig

    env = make_env(ctx, run)
    names = ctx.graph.names()
    done = len(studies.completed(study))
    remaining = run.episodes - done
    if remaining <= 0:
        return
    ckpt = AgentCheckpoint(folder / "agent")
    device = str(ctx.base.runtime.device)
    agent = (
        ckpt.load(env, ctx.settings.seed, device)
        if (done and ckpt.exists)
        else make_agent(
            env,
            run.episodes,
            run.warmup,
            ctx.settings.seed,
            device,
            DDPGConfig(sigma_final=run.sigma_final, sigma_decay=run.sigma_decay),
        )
    )
    if not done:
        env.add_demonstrations(demonstrations(ctx, run.demos)[: run.warmup])
    progress = _Progress(run.episodes, done, f"ddpg {ctx.settings.model}", run.progress)
    counter = [done]

    def on_episode(actions, info):
        studies.record_trial(study, names, actions, info, "ddpg", counter[0])
        counter[0] += 1
        progress.update(info["reward"], info["accuracy"])

    try:
        agent.learn(
            total_timesteps=remaining * env.n,
            callback=EpisodeCallback(on_episode, ckpt.save),
            reset_num_timesteps=False,
        )
    finally:
        progress.close()


def _run_sampler(ctx: SearchContext, run: SearchRun, study: optuna.Study) -> None:
    """TPE or random search over per-unit actions, through the same bounded environment."""
    env = make_env(ctx, run)
    names = ctx.graph.names()
    done = len(studies.completed(study))
    progress = _Progress(run.episodes, done, f"{run.method} {ctx.settings.model}", run.progress)
    try:
        while True:
            trial = study.ask()
            trial.set_user_attr("worker", studies.worker_id())
            if _quota_reached(study, trial, run.episodes):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            try:
                env.reset(seed=ctx.settings.seed + trial.number)
                for name in names:
                    _, reward, terminated, _, info = env.step(np.array([trial.suggest_float(name, -1.0, 1.0)]))
                for key, value in studies.trial_attrs(info, run.method).items():
                    trial.set_user_attr(key, value)
            except BaseException:  # Ctrl-C or an error: the trial is not left RUNNING
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            study.tell(trial, reward)
            progress.update(reward, info["accuracy"])
    finally:
        progress.close()


def _quota_reached(study: optuna.Study, trial: optuna.trial.Trial, total: int) -> bool:
    """True when ``total`` trials numbered before ``trial`` are complete or still running
    (trial numbers are assigned atomically by the storage, so workers never overshoot)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    ahead = [t for t in study.get_trials(deepcopy=False, states=states) if t.number < trial.number]
    return len(ahead) >= total


def _run_baseline(ctx: SearchContext, run: SearchRun, study: optuna.Study) -> None:
    from amc.search import baselines

    if studies.completed(study):
        return
    fn = {
        "uniform": baselines.uniform_keep,
        "global": baselines.global_keep,
        "sensitivity": lambda c: baselines.sensitivity_keep(c, progress=run.progress),
    }[run.method]
    keep = fn(ctx)
    if not ctx.budget.fits(keep):  # a bug, not bad input: never record a policy over budget
        raise AssertionError(f"{run.method} policy is over the budget: {ctx.budget.ratio(keep):.4f}")
    acc = ctx.proxy.evaluate(keep).accuracy
    macs_ratio, params_ratio = ctx.budget.ratios(keep)
    reward = -(1 - acc) if run.reward == "acc" else -(1 - acc) * np.log(macs_ratio * ctx.graph.base_macs)
    info = {
        "keep": keep,
        "sparsity": ctx.budget.sparsity(keep),
        "accuracy": acc,
        "macs_ratio": macs_ratio,
        "params_ratio": params_ratio,
        "reward": reward,
    }
    studies.record_trial(
        study,
        ctx.graph.names(),
        [2 * s / max(ctx.budget.max_sparsity, 1e-9) - 1 for s in info["sparsity"]],
        info,
        run.method,
        0,
    )


def _unstructured_policy(ctx: SearchContext, run: SearchRun) -> Policy:
    """Magnitude pruning of individual weights (no study: nothing to search, one policy)."""
    import copy

    from amc.pruning import unstructured

    s = ctx.settings
    if s.kind != "params":
        raise AmcError("unstructured pruning reduces non-zero weights, not dense MACs: pass --params TARGET")
    mode = run.method.split("-", 1)[1]
    per_layer = unstructured.sparsities(ctx.base.model, s.target, mode)
    net = unstructured.make_permanent(unstructured.apply_masks(copy.deepcopy(ctx.base.model), per_layer))
    acc = ctx.proxy.recalibrated_accuracy(net)
    nonzero = sum(int((p != 0).sum()) for p in net.parameters()) / ctx.graph.base_params
    policy = ctx.policy(
        ctx.budget.channels,
        run.method,
        {
            "heldout_proxy_acc": acc,
            "base_heldout_proxy_acc": ctx.proxy.base_accuracy(),
            "trials": 1,
            "study": None,
            "note": "unstructured: zeros give no dense speed-up (same shapes, same MACs)",
            "nonzero_weight_fraction": unstructured.nonzero_fraction(net),
        },
    )
    policy.sparsity, policy.structure = per_layer, "weights"
    policy.achieved = {
        "macs_ratio": 1.0,
        "params_ratio": 1.0,
        "nonzero_params_ratio": nonzero,
        "macs": ctx.graph.base_macs,
        "params": ctx.graph.base_params,
    }
    policy.budget["kind"] = "nonzero-params"
    save_policy(policy, run.out)
    return policy


def run_search(ctx: SearchContext, run: SearchRun) -> Policy:
    """Search with ``run.method`` and write the best policy to ``run.out``; returns it."""
    if run.method not in METHODS:
        raise AmcError(f"unknown method '{run.method}': use one of {', '.join(METHODS)}")
    if run.method in LEARNED and run.episodes < 1:
        raise AmcError("--episodes must be at least 1")
    if run.method == "ddpg" and run.warmup >= run.episodes:
        raise AmcError(
            f"--warmup ({run.warmup}) must be smaller than --episodes ({run.episodes}): "
            "warm-up episodes are random, the agent learns after them"
        )
    if run.method.startswith("unstructured"):
        return _unstructured_policy(ctx, run)
    s = ctx.settings
    name = run.study or studies.default_study_name(s.model, ctx.base.data.name, s.kind, s.target, run.method)
    storage = studies.open_storage(run.storage, run.runs_dir)
    sampler = {
        "optuna": optuna.samplers.TPESampler(seed=s.seed),
        "random": optuna.samplers.RandomSampler(seed=s.seed),
    }.get(run.method)
    study = studies.open_study(storage, name, _fingerprint(ctx, run), resume=run.resume, sampler=sampler)
    start = time.time()
    if run.method == "ddpg":
        _run_ddpg(ctx, run, study, run.runs_dir / name)
    elif run.method in ("optuna", "random"):
        _run_sampler(ctx, run, study)
    else:
        _run_baseline(ctx, run, study)
    best = studies.best_trial(study)
    if best is None:
        raise AmcError(f"study '{name}' has no evaluated policy yet: run the search again with --resume")
    keep = np.asarray(best.user_attrs["keep"])
    metrics = {
        "heldout_proxy_acc": best.user_attrs["accuracy"],
        "reward": best.value,
        "reward_kind": run.reward,
        "trials": len(studies.completed(study)),
        "best_trial": best.number,
        "study": name,
        "search_seconds_this_run": round(time.time() - start, 1),
        "proxy": asdict(s.proxy),
        "base_heldout_proxy_acc": ctx.proxy.base_accuracy(),
        "precision": ctx.base.runtime.precision,
    }
    policy = ctx.policy(keep, run.method, metrics)
    save_policy(policy, run.out)
    return policy
