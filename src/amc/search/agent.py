"""The DDPG agent: AMC's settings (He et al. 2018, https://arxiv.org/abs/1802.03494), on
stable-baselines3.

SB3's DDPG does the learning; three small extensions make it AMC's agent:

- :class:`EpisodeRewardBuffer`: every transition of an episode gets the episode's final reward
  (AMC stores the final reward with each of the episode's transitions), and sampled rewards
  have a moving average of batch-mean rewards subtracted (AMC's reward baseline, alpha 0.5);
- :class:`TruncatedNormalNoise`: exploration samples a truncated normal around the actor's
  action within the action bounds (sigma 0.5 of the [0, 1] action range, i.e. 1.0 on SB3's
  [-1, 1] scale), decaying x0.95 per episode after the warm-up;
- :class:`AMCDDPG`: samples with that noise and gives actor and critic their own learning
  rates (1e-4 and 1e-3); SB3 uses one rate for both.

Warm-up episodes take uniform random actions (SB3's ``learning_starts``), or, with
``warmup_noise="sigma"``, the noise around action 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from scipy.stats import truncnorm
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples

__all__ = ["EpisodeRewardBuffer", "TruncatedNormalNoise", "AMCDDPG", "make_agent", "DDPGConfig"]


class EpisodeRewardBuffer(ReplayBuffer):
    """A replay buffer that gives an episode's final reward to all its transitions and
    subtracts a moving-average baseline from sampled rewards."""

    def __init__(self, *args: Any, baseline_alpha: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.baseline_alpha = baseline_alpha
        self.baseline: float | None = None
        self._episode: list[int] = []

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        self._episode.append(self.pos)
        super().add(obs, next_obs, action, reward, done, infos)
        if np.asarray(done).any():
            self.rewards[self._episode, 0] = float(np.asarray(reward).reshape(-1)[0])
            self._episode = []

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        batch = super().sample(batch_size, env)
        mean = float(batch.rewards.mean())
        self.baseline = mean if self.baseline is None else self.baseline + self.baseline_alpha * (mean - self.baseline)
        return batch._replace(rewards=batch.rewards - self.baseline)


class TruncatedNormalNoise(ActionNoise):
    """Truncated-normal exploration around the policy's action, within [-1, 1].

    ``sigma`` is on SB3's [-1, 1] action scale; it is multiplied by ``decay`` at the end of
    every episode after the first ``warmup`` episodes. ``local``: the warm-up samples around
    action 0 (the reference policy, when the environment has one) with ``sigma`` instead of
    taking uniform random actions.
    """

    def __init__(
        self, sigma: float = 1.0, decay: float = 0.95, warmup: int = 0, seed: int | None = None, local: bool = False
    ) -> None:
        super().__init__()
        self.sigma, self.decay, self.warmup = sigma, decay, warmup
        self.local = local  # warm-up actions are this noise around action 0 instead of uniform random
        self.episodes = 0
        self.rng = np.random.default_rng(seed)

    def sample_around(self, mu: np.ndarray) -> np.ndarray:
        mu = np.clip(np.asarray(mu, dtype=np.float64), -1, 1)
        if self.sigma <= 1e-8:
            return mu
        a, b = (-1 - mu) / self.sigma, (1 - mu) / self.sigma
        return np.asarray(truncnorm.rvs(a, b, loc=mu, scale=self.sigma, random_state=self.rng))

    def __call__(self) -> np.ndarray:  # additive use (not AMC's): plain normal noise
        return self.rng.normal(0.0, self.sigma, 1)

    def reset(self) -> None:
        self.episodes += 1
        if self.episodes > self.warmup:
            self.sigma *= self.decay

    def state(self) -> dict[str, float]:
        return {"sigma": self.sigma, "episodes": self.episodes}


class AMCDDPG(DDPG):
    """SB3 DDPG with truncated-normal exploration and separate actor/critic learning rates."""

    def __init__(self, *args: Any, actor_lr: float = 1e-4, critic_lr: float = 1e-3, **kwargs: Any) -> None:
        self.actor_lr, self.critic_lr = actor_lr, critic_lr
        self.proposer: Callable[[], np.ndarray] | None = None  # proposed episodes' actions (TPE), set per run
        self.propose_warmup = True  # the proposer's episodes: the warm-up's, and every ``propose_every``-th after it
        self.propose_every = 0
        self._proposal = np.zeros(0)
        kwargs["learning_rate"] = critic_lr
        super().__init__(*args, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        excluded = ["proposer", "_proposal", "propose_warmup", "propose_every"]  # set by the searcher on resume
        return [*super()._excluded_save_params(), *excluded]

    def _proposing(self, learning_starts: int) -> bool:
        """Whether this step's episode is the proposer's: a warm-up episode (with ``propose_warmup``),
        or after the warm-up every ``propose_every``-th episode."""
        if self.proposer is None:
            return False
        if self.num_timesteps < learning_starts:
            return self.propose_warmup
        k = self.propose_every
        if k <= 0:  # the default: no env query on the learning phase's per-step path
            return False
        n = int(self.get_env().get_attr("n")[0])  # type: ignore[union-attr]
        return ((self.num_timesteps - learning_starts) // n) % k == k - 1

    def _proposed(self, n_envs: int) -> np.ndarray:
        """The proposer's action for this step: episodes have ``n`` steps each and start at
        multiples of ``n`` timesteps (a resumed agent stops between episodes), so a new episode's
        actions are asked for at each multiple."""
        n = int(self.get_env().get_attr("n")[0])  # type: ignore[union-attr]
        if self.num_timesteps % n == 0:
            assert self.proposer is not None
            self._proposal = np.asarray(self.proposer(), dtype=np.float64)
        return np.full((n_envs, 1), self._proposal[self.num_timesteps % n], dtype=np.float32)

    def _update_learning_rate(self, optimizers: Any) -> None:
        for group in self.actor.optimizer.param_groups:
            group["lr"] = self.actor_lr
        for group in self.critic.optimizer.param_groups:
            group["lr"] = self.critic_lr

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        demo = self.env.env_method("demo_action")[0] if self.env is not None else None
        if demo is not None:  # replaying a demonstration (a heuristic policy) in the warm-up
            scaled = np.full((n_envs, 1), demo, dtype=np.float32)
            return self.policy.unscale_action(scaled), scaled
        if self._proposing(learning_starts):  # an episode proposed by TPE
            scaled = self._proposed(n_envs)
            return self.policy.unscale_action(scaled), scaled
        local = getattr(action_noise, "local", False)  # an agent saved before ``local`` existed has none
        if not isinstance(action_noise, TruncatedNormalNoise) or (self.num_timesteps < learning_starts and not local):
            return super()._sample_action(learning_starts, action_noise, n_envs)
        assert self._last_obs is not None
        if self.num_timesteps < learning_starts:  # a local warm-up: noise around action 0
            scaled = np.zeros((n_envs, 1), dtype=np.float32)
        else:
            mu, _ = self.predict(self._last_obs, deterministic=True)
            scaled = self.policy.scale_action(mu)
        noisy = np.asarray(action_noise.sample_around(scaled), dtype=np.float32).reshape(scaled.shape)
        return self.policy.unscale_action(noisy), noisy


@dataclass(frozen=True)
class DDPGConfig:
    """The agent's hyper-parameters. The network sizes, learning rates, tau, batch size and gamma
    are AMC's (He et al. 2018, Sec. 4). ``sigma`` is the exploration noise's starting scale on
    SB3's [-1, 1] actions (1.0 = AMC's 0.5 of the [0, 1] range); it decays geometrically after
    the warm-up, by ``sigma_decay`` per episode if given (AMC: 0.95), else so that it reaches
    ``sigma_final`` on the search's last episode (exploration tied to the episode budget).
    ``critics=2`` makes it TD3 (Fujimoto et al. 2018, as SB3's TD3): twin critics whose minimum
    is the target, the actor updated every second step, and smoothed target actions, meant to
    counter a critic's over-estimation (on MobileNetV2 it searched worse than DDPG, one seed:
    docs/experiments/mobilenetv2-reference-0.5). ``warmup_noise="sigma"``: the warm-up samples
    ``sigma``'s truncated normal around action 0 (the reference policy) instead of uniform random
    actions, so the critic first learns the region the search starts from. ``"tpe"``: Optuna's TPE
    proposes each warm-up episode's actions from the episodes scored so far (the searcher sets
    :attr:`AMCDDPG.proposer`; :mod:`amc.search.warmup`)."""

    hidden: tuple[int, ...] = (300, 300)
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    tau: float = 0.01
    batch_size: int = 64
    gamma: float = 1.0
    sigma: float = 1.0
    sigma_final: float = 0.1
    sigma_decay: float | None = None
    critics: int = 1
    warmup_noise: str = "uniform"

    def decay_for(self, episodes: int, warmup: int) -> float:
        if self.sigma_decay is not None:
            return self.sigma_decay
        learning = max(episodes - warmup, 1)
        return float((self.sigma_final / self.sigma) ** (1.0 / learning))


def make_agent(
    env: Any, episodes: int, warmup: int, seed: int, device: str = "cpu", cfg: DDPGConfig = DDPGConfig()
) -> AMCDDPG:
    """A fresh DDPG agent for a pruning environment (``env.n`` steps per episode)."""
    steps = env.unwrapped.n if hasattr(env, "unwrapped") else env.get_attr("n")[0]
    agent = AMCDDPG(
        "MlpPolicy",
        env,
        actor_lr=cfg.actor_lr,
        critic_lr=cfg.critic_lr,
        buffer_size=max(episodes, 1) * steps + steps,
        learning_starts=warmup * steps,
        batch_size=cfg.batch_size,
        tau=cfg.tau,
        gamma=cfg.gamma,
        train_freq=(1, "episode"),
        gradient_steps=-1,
        action_noise=TruncatedNormalNoise(
            cfg.sigma, cfg.decay_for(episodes, warmup), warmup, seed, local=cfg.warmup_noise == "sigma"
        ),
        replay_buffer_class=EpisodeRewardBuffer,
        policy_kwargs={"net_arch": list(cfg.hidden), "n_critics": cfg.critics},
        seed=seed,
        device=device,
        verbose=0,
    )
    if cfg.critics > 1:  # TD3's other two tricks, at SB3's TD3 defaults (saved and loaded with the agent)
        agent.policy_delay, agent.target_policy_noise, agent.target_noise_clip = 2, 0.2, 0.5
    return agent


class AgentCheckpoint:
    """Saves and restores the agent, its replay buffer and noise state atomically, per episode.

    The replay buffer file is a pickle (SB3's format): it is this run's own output, never a
    file from elsewhere.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def exists(self) -> bool:
        return (self.folder / "agent.zip").is_file() and (self.folder / "buffer.pkl").is_file()

    def save(self, agent: AMCDDPG) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, writer in (("agent.zip", agent.save), ("buffer.pkl", agent.save_replay_buffer)):
            tmp = self.folder / f".{name}.tmp"
            writer(tmp)
            os.replace(tmp if tmp.exists() else Path(str(tmp) + ".zip"), self.folder / name)
        noise = agent.action_noise
        state = {
            "noise": noise.state() if isinstance(noise, TruncatedNormalNoise) else None,
            "num_timesteps": agent.num_timesteps,
        }
        tmp = self.folder / ".state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.folder / "state.json")

    def load(self, env: Any, seed: int, device: str = "cpu") -> AMCDDPG:
        agent = AMCDDPG.load(self.folder / "agent.zip", env=env, device=device, custom_objects={"seed": seed})
        agent.load_replay_buffer(self.folder / "buffer.pkl")
        state = json.loads((self.folder / "state.json").read_text())
        if isinstance(agent.action_noise, TruncatedNormalNoise) and state.get("noise"):
            agent.action_noise.sigma = state["noise"]["sigma"]
            agent.action_noise.episodes = state["noise"]["episodes"]
        return agent


class EpisodeCallback(BaseCallback):
    """Collects each episode's actions and hands the finished episode to ``on_episode``;
    calls ``checkpoint`` when the agent is consistent (the last episode stored and learned)."""

    def __init__(
        self,
        on_episode: Callable[[list[float], dict[str, Any]], Any],
        checkpoint: Callable[[AMCDDPG], None] | None = None,
    ) -> None:
        super().__init__()
        self.on_episode, self.checkpoint = on_episode, checkpoint
        self.actions: list[float] = []

    def _on_rollout_start(self) -> None:
        if self.checkpoint is not None and self.num_timesteps > 0:
            self.checkpoint(cast(AMCDDPG, self.model))

    def _on_training_end(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint(cast(AMCDDPG, self.model))

    def _on_step(self) -> bool:
        self.actions.append(float(np.asarray(self.locals["actions"]).reshape(-1)[0]))
        if bool(np.asarray(self.locals["dones"]).reshape(-1)[0]):
            info = self.locals["infos"][0]
            actions, self.actions = self.actions, []
            return self.on_episode(actions, info) is not False
        return True
