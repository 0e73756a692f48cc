"""The searcher extension point: one base class, one shared session, one registry.

A searcher decides *which* policies to try; everything else is shared through the
:class:`SearchSession` it is handed: the context (base, units, budget, proxy), the study every
evaluated policy goes to, the environment, one scoring path and the progress report. Add one
by subclassing :class:`Searcher` and decorating it with :func:`register_searcher`, or from
another package through the ``amc.searchers`` entry-point group (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import numpy as np
import optuna

from amc.errors import AmcError
from amc.proxy import ProxyResult
from amc.scoring import Episode, score
from amc.search import study as studies
from amc.search.context import SearchContext
from amc.search.progress import Progress

if TYPE_CHECKING:
    from amc.env import PruningEnv
    from amc.policy import Policy
    from amc.search.runner import SearchRun

__all__ = ["Searcher", "SearchSession", "register_searcher", "get_searcher", "searcher_names", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "amc.searchers"
S = TypeVar("S", bound=type["Searcher"])


@dataclass
class SearchSession:
    """What a searcher works with. ``run`` holds the episode count, reward and environment
    settings; ``folder`` is this study's own folder (agent checkpoints)."""

    ctx: SearchContext
    run: SearchRun
    study: optuna.Study | None  # None for searchers without a study (structure "weights")
    folder: Path
    progress: Progress = field(init=False)

    def __post_init__(self) -> None:
        self._next_episode = self.done  # numbers the episodes record() adds, without a query per episode
        self.progress = Progress(
            self.run.episodes, self._next_episode, f"{self.run.method} {self.ctx.settings.model}", self.run.progress
        )

    @property
    def done(self) -> int:
        """Evaluated policies already in the study."""
        return len(studies.completed(self.study)) if self.study is not None else 0

    def env(self) -> PruningEnv:
        """A fresh environment over the shared budget and proxy."""
        from amc.env import PruningEnv

        r = self.run
        return PruningEnv(self.ctx.budget, self.accuracy, r.reward, r.projection, r.fill)

    def accuracy(self, keep: np.ndarray) -> ProxyResult:
        """What the proxy measures of ``keep`` (accuracy and loss)."""
        return self.ctx.proxy.evaluate(keep)

    def score(self, keep: np.ndarray) -> Episode:
        """Score a policy outside the environment (baselines): the same path the environment uses."""
        if not self.ctx.budget.fits(keep):  # a bug, not bad input: never record a policy over budget
            raise AssertionError(f"{self.run.method} policy is over the budget: {self.ctx.budget.ratio(keep):.4f}")
        return score(self.ctx.budget, keep, self.accuracy, self.run.reward)

    def stopped(self) -> bool:
        """True when whoever started the search asked it to stop (the searcher should return)."""
        return bool(self.run.should_stop and self.run.should_stop())

    def record(self, episode: Episode, actions: list[float] | None = None) -> bool:
        """Add an evaluated policy to the study (``actions``: the environment's actions that
        give it; computed from its sparsities when not given). Returns False when the search
        should stop."""
        if actions is None:
            actions = self.env().actions_for(episode.sparsity)
        assert self.study is not None, "this searcher has no study"
        studies.record_trial(self.study, self.ctx.graph.names(), actions, episode, self.run.method, self._next_episode)
        self._next_episode += 1
        self.progress.update(episode.reward, episode.accuracy)
        return not self.stopped()


class Searcher(ABC):
    """A search strategy. Subclasses set ``name`` (the ``--method`` value) and may set:

    - ``learns``: True for stochastic searchers that improve over episodes (DDPG, samplers):
      they take ``--episodes``, and results are reported over seeds;
    - ``structure``: ``"channels"`` (units cut out; the default) or ``"weights"``
      (unstructured sparsity, no study);
    - ``description``: one line for ``amc searchers``.
    """

    name: ClassVar[str]
    learns: ClassVar[bool] = False
    structure: ClassVar[Literal["channels", "weights"]] = "channels"
    description: ClassVar[str] = ""

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler | None:
        """The Optuna sampler the study is opened with (None: the searcher adds its own trials)."""
        return None

    @abstractmethod
    def run(self, session: SearchSession) -> Policy | None:
        """Evaluate policies and ``session.record`` them until ``session.run.episodes`` are in
        the study (a deterministic searcher records one). Return None to let the runner write
        the study's best policy, or a finished :class:`~amc.policy.Policy` (no study)."""


_REGISTRY: dict[str, type[Searcher]] = {}
_plugins_loaded = False


def register_searcher(cls: S) -> S:
    """Class decorator: make ``cls`` available as ``--method cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    _REGISTRY[name] = cls
    return cls


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import amc.search.baselines  # noqa: F401  (built-ins register themselves)
    import amc.search.ddpg  # noqa: F401
    import amc.search.samplers  # noqa: F401
    import amc.search.unstructured  # noqa: F401

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Searcher):
            register_searcher(cls)


def searcher_names() -> tuple[str, ...]:
    _load_plugins()
    return tuple(_REGISTRY)


def get_searcher(name: str) -> type[Searcher]:
    """The searcher registered as ``name``; an unknown name is a one-line error listing them."""
    _load_plugins()
    if name not in _REGISTRY:
        raise AmcError(f"--method: unknown method '{name}': use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
