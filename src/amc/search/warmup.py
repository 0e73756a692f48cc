"""DDPG's warm-up episodes proposed by Optuna's TPE (``--warmup-noise tpe``).

AMC's warm-up takes uniformly random actions, the default ``sigma`` warm-up samples a normal
around the reference policy; neither learns from what it has scored. Here TPE proposes each
warm-up episode's per-unit actions from every episode the study holds so far (the reference
heuristics', the replayed demonstrations', its own earlier proposals'), the agent takes them,
and its replay buffer fills with episodes that improve as the warm-up goes on: the critic starts
from the region worth searching. The study is the search's own, so a resumed search proposes
from everything scored before it stopped.
"""

from __future__ import annotations

import numpy as np
import optuna

__all__ = ["TPEProposer"]


class TPEProposer:
    """Per-unit actions in [-1, 1] for the next episode, from TPE over ``study``'s complete trials.

    ``study`` holds the search's episodes as trials whose parameters are the actions, one per
    unit name (:func:`amc.search.study.record_trial`); it is read, never written: the proposals
    are asked of a private in-memory study that copies each new complete trial before asking.
    """

    def __init__(self, study: optuna.Study, names: list[str], seed: int) -> None:
        self.source, self.names = study, list(names)
        sampler = optuna.samplers.TPESampler(seed=seed)
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" line in the log
        try:
            self.local = optuna.create_study(direction=study.direction, sampler=sampler)
        finally:
            optuna.logging.set_verbosity(level)
        self._copied: set[int] = set()

    def _sync(self) -> None:
        complete = self.source.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        for trial in complete:
            if trial.number not in self._copied and set(trial.params) == set(self.names):
                self.local.add_trial(trial)
                self._copied.add(trial.number)

    def propose(self) -> np.ndarray:
        """The actions of one episode. Its trial stays RUNNING in the private study (TPE leaves
        running trials out): the episode's result arrives as the source study's trial."""
        self._sync()
        trial = self.local.ask()
        return np.asarray([trial.suggest_float(name, -1.0, 1.0) for name in self.names], dtype=np.float64)
