"""DDPG (AMC, He et al. 2018, https://arxiv.org/abs/1802.03494): an agent that picks each
unit's sparsity in turn and learns from the episode's held-out proxy reward.

The agent itself (SB3's DDPG with AMC's buffer, noise and learning rates) is in
:mod:`amc.search.agent`; this searcher runs it over the shared environment, replays the
heuristic demonstrations in its warm-up, records every episode in the study and checkpoints
the agent after each one, so a killed search resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amc.policy import Policy
from amc.search.base import Searcher, SearchSession, register_searcher

__all__ = ["DDPGSearcher", "demonstrations"]


def demonstrations(session: SearchSession, names: tuple[str, ...]) -> list[np.ndarray]:
    """Per-unit sparsities of the named heuristic policies (uniform, global, sensitivity)."""
    from amc.search.baselines import HEURISTICS

    return [session.ctx.budget.sparsity(HEURISTICS[n](session.ctx)) for n in names]


@register_searcher
class DDPGSearcher(Searcher):
    name = "ddpg"
    learns = True
    description = "AMC's DDPG agent (stable-baselines3), exploration tied to the episode budget"

    def run(self, session: SearchSession) -> Policy | None:
        from amc.search.agent import AgentCheckpoint, DDPGConfig, EpisodeCallback, make_agent

        run, ctx = session.run, session.ctx
        done = session.done
        if run.episodes - done <= 0:
            return None
        env = session.env()
        ckpt = AgentCheckpoint(session.folder / "agent")
        device = str(ctx.base.runtime.device)
        if done and ckpt.exists:
            agent = ckpt.load(env, ctx.settings.seed, device)
        else:
            cfg = DDPGConfig(sigma_final=run.sigma_final, sigma_decay=run.sigma_decay)
            agent = make_agent(env, run.episodes, run.warmup, ctx.settings.seed, device, cfg)
        if not done:
            env.add_demonstrations(demonstrations(session, run.demos)[: run.warmup])

        def on_episode(actions: list[float], info: dict[str, Any]) -> bool:
            return session.record(env.last_episode, actions)

        try:
            agent.learn(
                total_timesteps=(run.episodes - done) * env.n,
                callback=EpisodeCallback(on_episode, ckpt.save),
                reset_num_timesteps=False,
            )
        finally:
            session.progress.close()
        return None
