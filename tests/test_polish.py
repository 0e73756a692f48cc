"""Polish: a DDPG search's last episodes hill-climb from its best policy by channel swaps."""

import numpy as np
import pytest
from helpers import study_trials

from amc.errors import AmcError
from amc.search.polish import swap
from amc.search.runner import SearchRun, run_search


def test_a_swap_grows_one_unit_and_stays_within_the_budget(ctx):
    budget = ctx.budget
    start = budget.fill(budget.keep(np.full(len(budget.channels), 0.5)))
    rng = np.random.default_rng(0)
    swaps = [s for s in (swap(budget, start, rng) for _ in range(40)) if s is not None]
    assert len(swaps) > 20
    for s in swaps:
        assert budget.fits(s) and not np.array_equal(s, start)
        assert (s > start).any() and (s >= budget.min_keep).all() and (s <= budget.channels).all()
    assert any((s < start).any() for s in swaps)  # channels moved, not only added back


def test_no_swap_when_no_unit_can_give_or_take(ctx):
    budget = ctx.budget
    rng = np.random.default_rng(0)
    assert swap(budget, budget.min_keep.copy(), rng) is None  # no unit can give channels
    assert swap(budget, budget.channels.copy(), rng) is None  # no unit can take them


def test_the_last_episodes_polish_the_best_policy_and_resume(ctx, tmp_path):
    stops = iter([False] * 9 + [True])  # stopped at the 10th recorded episode: two polish steps in
    base = dict(method="ddpg", episodes=12, warmup=2, polish=4, runs_dir=tmp_path / "runs", out=tmp_path / "b.json",
                progress=False, study="polished")  # fmt: skip
    run_search(ctx, SearchRun(**base, should_stop=lambda: next(stops, True)))
    first = study_trials(tmp_path / "runs", "polished")
    assert len(first) == 10
    best = max(first[:8], key=lambda t: (t.value, -t.number))  # what the agent and the references left
    polished = np.asarray(first[8].user_attrs["keep"])
    assert (polished > np.asarray(best.user_attrs["keep"])).any()  # a swap around it
    policy = run_search(ctx, SearchRun(**base, resume=True))
    assert policy.metrics["trials"] == 12 and policy.achieved["macs_ratio"] <= 0.5 + 1e-9
    assert len({tuple(t.user_attrs["keep"]) for t in study_trials(tmp_path / "runs", "polished")[8:]}) >= 3


def test_polish_is_part_of_the_study_s_identity_and_checked_on_input(ctx, tmp_path):
    from amc.requests import SearchRequest, parse

    base = dict(method="ddpg", episodes=6, warmup=1, runs_dir=tmp_path / "runs", out=tmp_path / "b.json",
                progress=False, study="plain")  # fmt: skip
    run_search(ctx, SearchRun(**base))
    with pytest.raises(AmcError, match="other settings .*agent"):
        run_search(ctx, SearchRun(**{**base, "episodes": 8, "polish": 2, "resume": True}))
    assert parse(SearchRequest, {"model": "resnet20", "polish": 40}).polish == 40
    for bad in ({"method": "optuna", "polish": 5}, {"episodes": 100, "warmup": 25, "polish": 75}):
        with pytest.raises(AmcError, match="--polish"):
            parse(SearchRequest, {"model": "resnet20", **bad})


def test_demonstrations_are_replayed_beside_the_reference_heuristics(ctx, tmp_path):
    from amc.search.baselines import HEURISTICS

    run = SearchRun(method="ddpg", episodes=7, warmup=2, demos=("uniform",), reference=("global",), rescore=0,
                    runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False, study="demos")  # fmt: skip
    run_search(ctx, run)
    trials = study_trials(tmp_path / "runs", "demos")
    uniform = HEURISTICS["uniform"](ctx)
    assert np.array_equal(trials[1].user_attrs["keep"], uniform)  # the first agent episode, after the reference
