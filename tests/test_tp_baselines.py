"""Torch-Pruning's L1 pruners as heuristic policies (amc.search.tp_baselines)."""

from dataclasses import replace

import numpy as np
import pytest

from amc.pruning.budget import Budget
from amc.search.baselines import HEURISTICS
from amc.search.context import SearchContext
from amc.search.tp_baselines import tp_keep


@pytest.mark.parametrize("kind, target", [("macs", 0.5), ("params", 0.4)])
def test_torch_pruning_policies_meet_the_budget_and_spend_it(ctx, kind, target):
    budget = Budget(ctx.graph, target, kind, ctx.budget.max_sparsity)
    c = SearchContext(replace(ctx.settings, target=target, kind=kind), ctx.base, ctx.graph, budget, ctx.proxy)
    policies = {g: tp_keep(c, global_pruning=g) for g in (True, False)}
    floor = np.ceil(ctx.graph.channels * (1 - budget.max_sparsity))
    for keep in policies.values():
        assert budget.fits(keep) and (keep >= floor).all() and (keep <= ctx.graph.channels).all()
        assert np.array_equal(budget.fill(keep), keep)  # no channel could be added back
        assert budget.ratio(keep) > target - 0.1
    assert not np.array_equal(policies[True], policies[False])  # one threshold vs one ratio per layer


def test_torch_pruning_policies_can_be_the_search_reference():
    from amc.requests import SearchRequest

    assert {"tp-global-l1", "tp-local-l1"} <= set(HEURISTICS)
    req = SearchRequest(model="resnet20", method="ddpg", reference=["sensitivity", "tp-global-l1"])
    assert req.reference == ["sensitivity", "tp-global-l1"]
