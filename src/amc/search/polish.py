"""Polish: the last episodes of a search spent on budget-neutral channel swaps around its best.

A learned search samples whole policies; near its end most of them land around, not on, the best
one. Polishing hill-climbs from the best policy in the study: each step moves a few channels
from one unit to another (one unit kept larger, another cut until the budget holds, what is left
topped up), scores it on the same proxy, records it as an episode, and moves on from it when its
reward is higher. Every polished policy is a trial like any other, so the study's re-scoring on
unseen held-out images chooses among them and the search's own (a noisy step up is not kept
blindly).
"""

from __future__ import annotations

import numpy as np

from amc.pruning.budget import Budget
from amc.search import study as studies
from amc.search.base import SearchSession

__all__ = ["polish", "swap"]

STEPS = (1 / 32, 1 / 16, 1 / 8)  # the fractions of a unit's channels one swap moves
TRIES = 20  # draws per step before giving up on finding a swap that fits (a budget with no slack anywhere)


def swap(budget: Budget, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """``keep`` with one unit given more channels and another cut until the budget holds, then
    topped up (:meth:`Budget.fill`); None when the draw cannot make a different policy that fits."""
    channels, floor, step = budget.channels, budget.min_keep, budget.round_to
    grow = np.flatnonzero(keep < channels)
    if len(grow) == 0:
        return None
    i = int(rng.choice(grow))
    shrink = np.flatnonzero(keep > floor)
    shrink = shrink[shrink != i]
    if len(shrink) == 0:
        return None
    j = int(rng.choice(shrink))
    moved = max(step, int(round(channels[i] * float(rng.choice(STEPS)) / step)) * step)
    out = keep.copy()
    out[i] = min(channels[i], out[i] + moved)
    while not budget.fits(out) and out[j] - step >= floor[j]:
        out[j] -= step
    if not budget.fits(out):
        return None
    out = budget.fill(out)
    return None if np.array_equal(out, keep) else out


def polish(session: SearchSession, until: int, seed: int) -> None:
    """Record swaps around the study's best policy until it holds ``until`` episodes."""
    assert session.study is not None, "polish needs the search's study"
    best = studies.best_trial(session.study)
    if best is None:
        return
    budget = session.ctx.budget
    keep, reward = np.asarray(best.user_attrs["keep"], dtype=np.int64), float(best.value or 0.0)
    done = session.done
    rng = np.random.default_rng([seed, done])  # a resumed polish draws on, not the same swaps again
    left, misses = until - done, 0
    while left > 0 and misses < TRIES:
        cand = swap(budget, keep, rng)
        if cand is None:
            misses += 1
            continue
        misses, left = 0, left - 1
        episode = session.score(cand)
        if not session.record(episode):
            return
        if episode.reward > reward:
            keep, reward = cand, episode.reward
