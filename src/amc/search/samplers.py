"""Optuna samplers as searchers: each trial suggests one action per unit, and the shared
environment turns them into a policy that meets the budget (the same bound and projection
DDPG gets). ``optuna`` is TPE; ``random`` is Optuna's random sampler."""

from __future__ import annotations

import numpy as np
import optuna

from amc.policy import Policy
from amc.search import study as studies
from amc.search.base import Searcher, SearchSession, register_searcher

__all__ = ["OptunaSearcher", "RandomSearcher"]


class _SamplerSearcher(Searcher):
    learns = True

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def run(self, session: SearchSession) -> Policy | None:
        env, names, seed = session.env(), session.ctx.graph.names(), session.ctx.settings.seed
        study = session.study
        assert study is not None, "sampler searchers always have a study"
        try:
            while True:
                trial = study.ask()
                trial.set_user_attr("worker", studies.worker_id())
                if _quota_reached(study, trial, session.run.episodes) or session.stopped():
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    break
                try:
                    env.reset(seed=seed + trial.number)
                    for name in names:
                        env.step(np.array([trial.suggest_float(name, -1.0, 1.0)]))
                    episode = env.last_episode
                    for key, value in studies.trial_attrs(episode, self.name).items():
                        trial.set_user_attr(key, value)
                except BaseException:  # Ctrl-C or an error: the trial is not left RUNNING
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    raise
                study.tell(trial, episode.reward)
                session.progress.update(episode.reward, episode.accuracy)
        finally:
            session.progress.close()
        return None


def _quota_reached(study: optuna.Study, trial: optuna.trial.Trial, total: int) -> bool:
    """True when ``total`` trials numbered before ``trial`` are complete or still running
    (trial numbers are assigned atomically by the storage, so workers never overshoot)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    ahead = [t for t in study.get_trials(deepcopy=False, states=states) if t.number < trial.number]
    return len(ahead) >= total


@register_searcher
class OptunaSearcher(_SamplerSearcher):
    name = "optuna"
    description = "Optuna's TPE sampler over per-unit actions"

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed)


@register_searcher
class RandomSearcher(_SamplerSearcher):
    name = "random"
    description = "uniformly random per-unit actions (Optuna's random sampler)"

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)
