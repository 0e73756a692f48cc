"""DDPG (AMC, He et al. 2018, https://arxiv.org/abs/1802.03494): an agent that picks each
unit's sparsity in turn and learns from the episode's held-out proxy reward.

The agent itself (SB3's DDPG with AMC's buffer, noise and learning rates) is in
:mod:`amc.search.agent`; this searcher runs it over the shared environment, replays the
heuristic demonstrations in its warm-up, records every episode in the study and checkpoints
the agent after each one, so a killed search resumes where it stopped.
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from amc.checkpoints import atomic_write_bytes
from amc.env import CENTRED
from amc.errors import AmcError
from amc.policy import Policy
from amc.scoring import Episode
from amc.search.base import Searcher, SearchSession, register_searcher

if TYPE_CHECKING:
    from amc.env import PruningEnv

__all__ = ["DDPGSearcher", "demonstrations", "reference_policy"]

REFERENCE_FILE = "reference.json"


def demonstrations(session: SearchSession, names: tuple[str, ...]) -> list[np.ndarray]:
    """Per-unit sparsities of the named heuristic policies (uniform, global, sensitivity)."""
    from amc.search.baselines import HEURISTICS

    return [session.ctx.budget.sparsity(HEURISTICS[n](session.ctx)) for n in names]


def reference_policy(session: SearchSession, names: tuple[str, ...]) -> np.ndarray:
    """The per-unit sparsities of the best of the named heuristics on the proxy: each is scored
    and recorded as one of the search's episodes (so the search can only return something at
    least as good), and the choice is kept in the study's folder with every candidate's kept
    channels (all are re-scored at the end: the proxy's choice between them is noisy too), so a
    resumed search centres its actions on the same policy without scoring them again."""
    path = session.folder / REFERENCE_FILE
    if path.is_file():
        return np.asarray(json.loads(path.read_text())["sparsity"], dtype=np.float64)
    best: tuple[float, str, Episode] | None = None
    scored: dict[str, list[int]] = {}
    for name in names:
        keep = _heuristic_keep(session, name)
        if keep is None:
            continue
        episode = session.score(keep)
        session.record(episode)
        scored[name] = [int(k) for k in episode.keep]
        if best is None or episode.accuracy > best[0]:
            best = (episode.accuracy, name, episode)
    if best is None:
        raise AmcError(f"--reference: none of {', '.join(names)} could be computed for this model: name others")
    sparsity = np.asarray(best[2].sparsity, dtype=np.float64)
    record = {"heuristic": best[1], "proxy_accuracy": best[0], "sparsity": sparsity.tolist(),
              "keep": scored[best[1]], "candidates": scored}  # fmt: skip
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())
    return sparsity


def _heuristic_keep(session: SearchSession, name: str) -> np.ndarray | None:
    """The named heuristic's kept channels; for Torch-Pruning's pruners (``tp-*``), None with a warning
    when they cannot be computed for this model (they do not handle every layer a user's network may
    have). amc's own heuristics always can: their errors are raised."""
    from amc.search.baselines import HEURISTICS

    if not name.startswith("tp-"):
        return HEURISTICS[name](session.ctx)
    try:
        return HEURISTICS[name](session.ctx)
    except Exception as e:  # noqa: BLE001 - another library's limits: the other references still serve
        warnings.warn(f"reference {name} left out: {type(e).__name__}: {e}", stacklevel=2)
        return None


@register_searcher
class DDPGSearcher(Searcher):
    name = "ddpg"
    learns = True
    description = "AMC's DDPG agent (stable-baselines3), searching around the best heuristic"

    def run(self, session: SearchSession) -> Policy | None:
        run, ctx = session.run, session.ctx
        env = session.env()
        if run.reference:  # scored and recorded in every projection; centres only spread and bounded
            reference = reference_policy(session, run.reference)
            if env.projection in CENTRED:
                env.set_reference(reference)
        learn_until = run.episodes - run.polish  # the last --polish episodes swap channels around the best
        try:
            done = session.done
            if done < learn_until:
                self._learn(session, env, done, learn_until)
            if run.polish:
                from amc.search.polish import polish

                polish(session, run.episodes, ctx.settings.seed)
        finally:
            session.progress.close()
        return None

    @staticmethod
    def _learn(session: SearchSession, env: PruningEnv, done: int, until: int) -> None:
        """Run the agent from ``done`` until the study holds ``until`` episodes, from its checkpoint when resumed."""
        from amc.search.agent import AgentCheckpoint, DDPGConfig, EpisodeCallback, make_agent

        run, ctx = session.run, session.ctx
        ckpt = AgentCheckpoint(session.folder / "agent")
        device = str(ctx.base.runtime.device)
        if done and ckpt.exists:
            agent = ckpt.load(env, ctx.settings.seed, device)
        else:
            cfg = DDPGConfig(sigma=run.sigma, sigma_final=run.sigma_final, sigma_decay=run.sigma_decay,
                             critics=run.critics, warmup_noise=run.warmup_noise)  # fmt: skip
            agent = make_agent(env, until, run.warmup, ctx.settings.seed, device, cfg)
            # a fresh agent replays them (``done`` counts the reference heuristics' episodes too)
            env.add_demonstrations(demonstrations(session, run.demos)[: run.warmup])

        if run.warmup_noise == "tpe" or run.tpe_every:  # rebuilt on resume: it proposes from every episode scored
            from amc.search.warmup import TPEProposer

            assert session.study is not None, "DDPG always has a study"
            agent.proposer = TPEProposer(session.study, ctx.graph.names(), ctx.settings.seed).propose
            agent.propose_warmup, agent.propose_every = run.warmup_noise == "tpe", run.tpe_every

        def on_episode(actions: list[float], info: dict[str, Any]) -> bool:
            return session.record(env.last_episode, actions)

        agent.learn(
            total_timesteps=(until - done) * env.n,
            callback=EpisodeCallback(on_episode, ckpt.save),
            reset_num_timesteps=False,
        )
