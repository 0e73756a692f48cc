import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from amc.env import ENV_ID, PruningEnv, register
from amc.models import build_model
from amc.pruning.budget import Budget
from amc.pruning.units import UnitGraph


@pytest.fixture(scope="module")
def budget():
    return Budget(UnitGraph(build_model("resnet20")), 0.5)


def fake_accuracy(keep):  # more channels kept -> higher accuracy; deterministic
    return float(np.mean(keep / keep.max()))


def test_passes_gymnasium_and_sb3_checkers(budget):
    register()
    env = gym.make(ENV_ID, budget=budget, evaluate=fake_accuracy)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(PruningEnv(budget, fake_accuracy), warn=True)


@pytest.mark.parametrize("reward", ["acc", "acc-flops"])
def test_every_episode_meets_the_budget(budget, reward):
    env = PruningEnv(budget, fake_accuracy, reward)
    rng = np.random.default_rng(0)
    for episode in range(25):
        obs, _ = env.reset(seed=episode)
        assert env.observation_space.contains(obs)
        for t in range(env.n):
            obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
            assert env.observation_space.contains(obs)
            assert term == (t == env.n - 1) and not trunc
        assert info["macs_ratio"] <= 0.5 + 1e-9
        err = 1 - info["accuracy"]
        expected = -err if reward == "acc" else -err * np.log(info["macs_ratio"] * budget.graph.base_macs)
        assert r == pytest.approx(expected)


@pytest.mark.parametrize("round_to, projection", [(8, "amc"), (4, "amc"), (8, "spread"), (8, "bounded")])
def test_every_episode_meets_the_budget_with_counts_rounded(round_to, projection):
    """The action bound once stopped at a count between multiples, which the rounding then raised:
    a search with --round-to 8 returned policies at 1.02 of their budget."""
    rounded = Budget(UnitGraph(build_model("resnet56")), 0.4, round_to=round_to)
    env = PruningEnv(rounded, fake_accuracy, projection=projection)
    rng = np.random.default_rng(1)
    for episode in range(40):
        env.reset(seed=episode)
        low = rng.uniform(-1, 0)  # some episodes spare the early units: the bound then binds at the end
        for _ in range(env.n):
            _, _, _, _, info = env.step(rng.uniform(low, 1, 1).astype(np.float32))
        assert info["macs_ratio"] <= 0.4 + 1e-9
        assert all(k % round_to == 0 or k == c for k, c in zip(env.last_episode.keep, rounded.channels))


def test_action_maps_to_sparsity_range(budget):
    env = PruningEnv(budget, fake_accuracy)
    env.reset()
    assert env.sparsity_for(1.0) == pytest.approx(budget.max_sparsity)
    assert env.sparsity_for(-1.0) == pytest.approx(budget.min_sparsity(0, budget.channels))


def _mid_episode(projection: str, target: float, steps: int) -> PruningEnv:
    tight = Budget(UnitGraph(build_model("resnet56")), target)
    env = PruningEnv(tight, fake_accuracy, projection=projection)
    env.reset()
    for _ in range(steps):  # the early units spared: the bound binds from here on
        env.step(np.full(1, -0.6, dtype=np.float32))
    return env


def test_the_bounded_projection_spans_only_what_the_bound_leaves_open():
    """Near a tight budget, spread raises every action below a small negative one to the bound
    alike; bounded maps -1 to the bound and spreads [-1, 0] over [bound, centre]."""
    spread, bounded = _mid_episode("spread", 0.3, 5), _mid_episode("bounded", 0.3, 5)
    lo = bounded.budget.min_sparsity(bounded._t, bounded._keep)
    assert lo > 0.3  # the situation under test: the bound leaves little
    actions = np.linspace(-1, 1, 21)
    wide, narrow = [spread.sparsity_for(a) for a in actions], [bounded.sparsity_for(a) for a in actions]
    assert narrow[0] == pytest.approx(lo) and narrow[-1] == pytest.approx(bounded.budget.max_sparsity)
    assert np.all(np.diff(narrow) > 0)  # every action asks for something different
    spread_lo = spread.budget.min_sparsity(spread._t, spread._keep)  # its prefix differs: -0.6 asked for less
    assert sum(w == pytest.approx(spread_lo) for w in wide) >= 5 and sum(n == pytest.approx(lo) for n in narrow) == 1
    assert spread.sparsity_for(1.0) == bounded.sparsity_for(1.0)
    for a in actions:  # action_for inverts sparsity_for within the range
        assert bounded.action_for(bounded.sparsity_for(a)) == pytest.approx(a, abs=1e-9)


def test_all_minus_one_episode_is_bounded_up_to_the_budget(budget):
    env = PruningEnv(budget, fake_accuracy)
    env.reset()
    for _ in range(env.n):  # the agent asks for no pruning at all: the bound forces enough
        *_, info = env.step(np.array([-1.0], dtype=np.float32))
    assert 0.45 < info["macs_ratio"] <= 0.5


@pytest.mark.parametrize("shape", ["global-like", "front-heavy"])
def test_zero_actions_replay_the_reference_and_others_search_around_it(budget, shape):
    """With a reference policy, action 0 at every unit gives the reference back (to a channel),
    and an agent that spares an early unit has the deficit spread over the later ones."""
    from amc.search.baselines import shaped_keep_for

    n = len(budget.channels)
    weights = np.linspace(0.2, 1.0, n) if shape == "global-like" else np.linspace(1.0, 0.2, n)
    ref_keep = shaped_keep_for(budget, weights)
    env = PruningEnv(budget, fake_accuracy, projection="spread", fill=False)
    env.set_reference(budget.sparsity(ref_keep))
    env.reset()
    for _ in range(n):
        env.step(np.zeros(1, dtype=np.float32))
    assert np.abs(env.last_episode.keep - ref_keep).max() <= 1
    env.reset()
    env.step(np.full(1, -1.0, dtype=np.float32))  # the first unit spared
    for _ in range(n - 1):
        env.step(np.zeros(1, dtype=np.float32))
    keep = env.last_episode.keep
    assert keep[0] == budget.channels[0] and budget.fits(keep)
    assert (keep[1:] <= ref_keep[1:]).all() and (keep[1:] < ref_keep[1:]).sum() > n // 2  # spread, not the tail


def test_reference_needs_the_spread_projection(budget):
    with pytest.raises(ValueError, match="a reference policy needs projection in"):
        PruningEnv(budget, fake_accuracy, projection="amc").set_reference(np.zeros(len(budget.channels)))


def test_the_loss_reward_is_the_proxys_negative_cross_entropy(budget):
    from amc.proxy import ProxyResult

    def measured(keep):  # more channels kept -> lower loss
        return ProxyResult(fake_accuracy(keep), 100, {}, loss=2.0 - fake_accuracy(keep))

    env = PruningEnv(budget, measured, "loss")
    env.reset(seed=0)
    for _ in range(env.n):
        _, r, term, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert term and r == pytest.approx(-(2.0 - info["accuracy"]))
    assert env.last_episode.loss == pytest.approx(2.0 - info["accuracy"])
    plain = PruningEnv(budget, fake_accuracy, "loss")  # a proxy that measures no loss cannot give it
    plain.reset(seed=0)
    with pytest.raises(ValueError, match="measures the loss"):
        for _ in range(plain.n):
            plain.step(np.zeros(1, dtype=np.float32))
