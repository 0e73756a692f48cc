"""Measured-latency budgets: the per-layer latency table is a cost model like MACs (cached per
machine, runtime and batch), a search under ``--latency`` meets it, and bad runtimes or
unreachable targets get one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import amc.deploy.table as table_mod
from amc.deploy.runtimes import get_runtime, runtime_names
from amc.deploy.table import LatencyCost, latency_table
from amc.errors import AmcError
from amc.pruning.budget import Budget


@pytest.fixture(scope="module")
def table(ctx, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache") / "latency"  # the CLI test below reuses it
    return latency_table(ctx.base.model, ctx.graph, get_runtime("torch-fp32", 1), 1, cache=cache), cache


def test_table_predicts_the_unpruned_network_and_shrinks_with_channels(ctx, table):
    tab, _ = table
    cost = LatencyCost(ctx.graph, tab)
    full = ctx.graph.channels.astype(int)
    assert cost.cost(full) == pytest.approx(tab.base, rel=0.5)  # the fit passes near its own points
    small = np.maximum(1, full // 4)
    assert cost.cost(small) < cost.cost(full)
    assert tab.alpha > 0
    assert len(tab.layers) == sum(1 for info in ctx.graph.layers)  # every conv and linear layer


def test_table_is_cached_per_machine_runtime_and_batch(ctx, table, monkeypatch):
    tab, cache = table
    monkeypatch.setattr(table_mod, "_measure_layers", lambda *a: pytest.fail("measured again"))
    again = latency_table(ctx.base.model, ctx.graph, get_runtime("torch-fp32", 1), 1, cache=cache)
    assert again.seconds == tab.seconds and again.key["runtime"] == "torch-fp32"
    monkeypatch.undo()
    assert len(list(cache.glob("*.json"))) == 1


def test_budget_on_latency_bounds_like_macs(ctx, table):
    tab, _ = table
    # measured tables differ between machines: aim between the smallest reachable and the whole
    whole = Budget(ctx.graph, 1.0, cost=LatencyCost(ctx.graph, tab))
    smallest = whole.ratio(whole.min_keep)
    assert smallest < 0.95
    budget = Budget(ctx.graph, (1 + smallest) / 2, cost=LatencyCost(ctx.graph, tab))
    assert budget.kind == "latency"
    keep = budget.keep(np.full(len(ctx.graph.units), 0.5))
    assert budget.ratio(keep) < 1.0
    with pytest.raises(AmcError, match="latency target 0.01 is unreachable.*the smallest reachable is"):
        Budget(ctx.graph, 0.01, cost=LatencyCost(ctx.graph, tab))


def test_unknown_runtime_is_one_line():
    with pytest.raises(AmcError, match="--runtime: unknown runtime 'tensorrt': use one of"):
        get_runtime("tensorrt")
    assert {"onnxruntime", "torch-fp32", "torch-bf16"} <= set(runtime_names())


def test_runtime_latencies_measure_each_runtime_and_leave_the_network_as_it_was():
    from torch import nn

    from amc.deploy.measure import latency_key, runtime_latencies

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)
    )
    got = runtime_latencies(net, (3, 8, 8), ["torch-bf16", "onnxruntime"], batches=(1, 4), min_time=0.01)
    assert set(got) == {latency_key(r, b) for r in ("torch-bf16", "onnxruntime") for b in (1, 4)}
    assert all(v > 0 for v in got.values())
    assert net[0].weight.is_contiguous()  # torch-bf16 timed a channels_last copy, not this network


def test_search_under_a_latency_budget_from_the_cli(ctx, table, tiny_data, tmp_path):
    out = tmp_path / "p.json"
    cmd = [sys.executable, "-m", "amc", "search", "--model", "resnet20", "--data", str(tiny_data),
           "--checkpoint", str(ctx.settings.checkpoint), "--method", "uniform", "--latency", "0.85",
           "--runtime", "torch-fp32", "--batch-size", "1", "--proxy-size", "20", "--calib-images", "10",
           "--precision", "fp32", "--threads", "1",
           "--out", str(out), "--storage", str(tmp_path / "s.journal")]  # fmt: skip
    env = {**os.environ, "AMC_CACHE": str(table[1].parent)}  # the table measured above (same runtime and threads)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    policy = json.loads(out.read_text())
    assert policy["budget"]["kind"] == "latency" and policy["budget"]["runtime"] == "torch-fp32"
    assert policy["budget"]["used"] <= 1 + 1e-9
    assert policy["metrics"]["policies_measured"] >= 1 and policy["metrics"]["measured_latency_ratio"] > 0
    assert len(list(table[1].glob("*.json"))) == 1  # the cached table was used, not measured again
    r = subprocess.run([*cmd[:-4], "--flops", "0.5", *cmd[-4:]], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--flops and --latency contradict each other" in r.stderr


def test_round_to_auto_picks_the_smallest_multiple_as_fast_as_the_fastest():
    from amc.deploy.rounding import pick

    assert pick({1: 1.0, 8: 0.90, 16: 0.89}) == 8  # 0.90 is within 3% of 0.89
    assert pick({1: 0.70, 8: 0.90, 16: 0.95}) == 1
    assert pick({2: 0.80, 4: 0.60}) == 4


def test_round_to_auto_on_an_unreachable_target_names_the_smallest_reachable(ctx):
    from amc.deploy.rounding import choose_round_to

    def keep_for(m: int) -> np.ndarray:
        raise AmcError(f"latency target 0.6 is unreachable ...: the smallest reachable is {0.67 + m / 100:g}")

    with pytest.raises(AmcError, match="the smallest reachable is 0.68$"):  # the finest multiple's reason
        choose_round_to(ctx.base.model, ctx.graph, keep_for, get_runtime("torch-fp32", 1), 1, budget_label="x")


def test_round_to_auto_measures_each_multiple_once_and_the_budget_holds(tiny_data, tmp_path, monkeypatch):
    from helpers import tiny_checkpoint

    import amc.deploy.rounding as rounding
    from amc.proxy import ProxyConfig
    from amc.runtime import Runtime
    from amc.search.baselines import uniform_keep_for
    from amc.search.context import SearchSettings, build_context

    settings = SearchSettings(model="resnet20", data=str(tiny_data), checkpoint=str(tiny_checkpoint(tmp_path)),
                              target=0.5, round_to="auto", runtime="torch-fp32", allow_train=False,
                              proxy=ProxyConfig(size=10, calib_images=10, batch_size=8))  # fmt: skip
    monkeypatch.setenv("AMC_CACHE", str(tmp_path / "cache"))
    ctx = build_context(settings, Runtime.create("cpu", "fp32"))
    assert ctx.budget.round_to in rounding.CANDIDATES
    keep = uniform_keep_for(ctx.budget)  # what the choice was measured on
    assert all(k % ctx.budget.round_to == 0 or k == c for k, c in zip(keep, ctx.graph.channels))
    assert ctx.budget.ratio(keep) <= 0.5 + 1e-9
    saved = list((tmp_path / "cache" / "latency").glob("round-to-*.json"))
    assert len(saved) == 1 and len(json.loads(saved[0].read_text())["ratios"]) >= 2
    monkeypatch.setattr(rounding, "measure_ratio", lambda *a, **k: pytest.fail("measured again"))
    assert build_context(settings, Runtime.create("cpu", "fp32")).budget.round_to == ctx.budget.round_to


@pytest.mark.parametrize("value, fragment", [("0", "--round-to"), ("fast", "--round-to")])
def test_round_to_takes_a_multiple_or_auto(value, fragment):
    from amc.requests import SearchRequest, parse

    assert parse(SearchRequest, {"model": "resnet20", "round_to": "auto"}).round_to == "auto"
    assert parse(SearchRequest, {"model": "resnet20", "round_to": "16"}).round_to == 16
    with pytest.raises(AmcError, match=fragment) as e:
        parse(SearchRequest, {"model": "resnet20", "round_to": value})
    assert "\n" not in str(e.value)


def test_a_rounded_table_times_counts_on_the_multiple_and_is_cached_apart(ctx):
    from amc.deploy.layers import kept_shape
    from amc.deploy.table import machine_key, random_keeps

    conv = next(i for i in ctx.graph.layers if i.kind == "conv" and i.in_channels == i.out_channels == 64)
    assert kept_shape(conv, 0.3, 0.3) == (19, 19, 1)  # free counts: round(0.3 * 64)
    assert kept_shape(conv, 0.3, 0.3, round_to=8) == (24, 24, 1)  # up to the search's multiple
    assert kept_shape(conv, 1.0, 1.0, round_to=48) == (64, 64, 1)  # never above the layer's own
    keeps = random_keeps(ctx.graph, 4, 0.8, seed=1, round_to=8)
    assert all(np.all((k % 8 == 0) | (k == ctx.graph.channels)) for k in keeps)
    rt = get_runtime("torch-fp32", 1)
    assert "round_to" not in machine_key(rt, 1, ctx.graph)  # tables of free counts keep their cache keys
    assert machine_key(rt, 1, ctx.graph, 8) != machine_key(rt, 1, ctx.graph, 4)


def _verify(monkeypatch, true_ratio, scores, predicted, target=0.6, lucky=()):
    """verify_latency over candidates whose measured ratio is ``true_ratio[i]`` (no timing)."""
    import amc.deploy.verify as verify

    monkeypatch.setattr(verify, "pruned_copy", lambda model, graph, keep: int(keep[0]))
    draws: dict[float, int] = {}

    def measure_ratio(base_run, run, rounds):
        r = run()
        draws[r] = draws.get(r, 0) + 1
        return r if draws[r] == 1 or r not in lucky else 0.7  # a lucky ratio reads 0.7 the second time

    monkeypatch.setattr(verify, "measure_ratio", measure_ratio)

    class Fake:
        name = "fake"

        def runnable(self, net, size, batch):
            return lambda: 1.0 if not isinstance(net, int) else true_ratio[net]

    graph = type("G", (), {"input_size": (3, 8, 8)})()
    cands = [verify.Candidate(np.array([i]), s, p) for i, (s, p) in enumerate(zip(scores, predicted))]
    return verify.verify_latency(None, graph, Fake(), 1, cands, target, top=2)


def test_a_latency_budget_is_kept_as_measured_not_as_predicted(monkeypatch):
    # the best-scoring policy measures over the budget: the next best within it wins, nothing more is measured
    v = _verify(monkeypatch, [0.65, 0.58, 0.5, 0.4], scores=[0.9, 0.8, 0.7, 0.1], predicted=[0.6, 0.6, 0.55, 0.4])
    assert (v.index, v.within, sorted(v.measured)) == (1, True, [0, 1])
    # the two best-scoring both over: the predicted fastest of the rest are measured, the best of those within wins
    v = _verify(monkeypatch, [0.65, 0.62, 0.59, 0.4], scores=[0.9, 0.8, 0.7, 0.1], predicted=[0.6, 0.6, 0.55, 0.4])
    assert (v.index, v.within, sorted(v.measured)) == (2, True, [0, 1, 2, 3])
    v = _verify(monkeypatch, [0.7, 0.8, 0.75], scores=[0.9, 0.8, 0.7], predicted=[0.6, 0.6, 0.6])
    assert (v.index, v.within) == (0, False)  # the fastest measured
    # a ratio within the budget is measured again, and one that reads over it the second time is not kept
    v = _verify(monkeypatch, [0.58, 0.59, 0.5], scores=[0.9, 0.8, 0.1], predicted=[0.6, 0.6, 0.5], lucky=(0.58,))
    assert (v.index, v.measured[0], v.measured[1]) == (1, 0.7, 0.59)


def test_round_to_auto_under_a_latency_budget_times_half_the_macs_without_a_table(ctx, monkeypatch):
    from dataclasses import replace

    import amc.deploy.rounding as rounding
    from amc.search.context import _auto_round_to

    seen = {}

    def fake_choose(model, graph, keeps_for, runtime, batch, *, budget_label, cache=None):
        keeps = keeps_for(4)
        seen["label"], seen["macs"] = budget_label, [ctx.graph.cost(k)[0] / ctx.graph.base_macs for k in keeps]
        seen["shapes"] = {tuple(k) for k in keeps}
        return rounding.RoundingChoice(4, {1: 0.7, 4: 0.6})

    monkeypatch.setattr(rounding, "choose_round_to", fake_choose)
    settings = replace(ctx.settings, kind="latency", target=0.6, round_to="auto", runtime="torch-fp32")
    assert _auto_round_to(settings, ctx.base, ctx.graph) == 4
    assert seen["label"].startswith("macs0.5-")  # no latency table was needed
    assert len(seen["macs"]) == 4 and all(0.45 < m <= 0.5 for m in seen["macs"])  # every network at half the MACs
    assert len(seen["shapes"]) == 4  # the uniform network and three others


def test_shaped_policies_fit_the_budget_spend_it_and_follow_their_shape(ctx):
    from amc.pruning.budget import Budget
    from amc.search.baselines import shaped_keep_for, uniform_keep_for

    b = Budget(ctx.graph, 0.5, "macs", 0.8, 8)
    flat = np.ones(len(ctx.graph.channels))
    assert np.array_equal(shaped_keep_for(b, flat), uniform_keep_for(b))
    shape = np.random.default_rng(3).uniform(0.25, 1.0, len(flat))
    keep = shaped_keep_for(b, shape)
    assert b.fits(keep) and b.ratio(keep) > 0.45  # within the budget, and most of it spent
    assert np.all((keep % 8 == 0) | (keep == ctx.graph.channels))
    s = b.sparsity(keep)
    hi, lo = np.argmax(shape), np.argmin(shape)
    assert s[hi] > s[lo]  # pruned where the shape says most


def test_a_latency_search_none_of_whose_policies_measures_within_searches_again_tightened(ctx, table, tmp_path,
                                                                                        monkeypatch):  # fmt: skip
    from dataclasses import replace

    import amc.search.runner as runner
    from amc.policy import load_policy

    tab, _ = table
    lat = replace(ctx, settings=replace(ctx.settings, kind="latency", target=0.9, runtime="torch-fp32"),
                  budget=Budget(ctx.graph, 0.9, cost=LatencyCost(ctx.graph, tab)))  # fmt: skip
    checked = []

    def measured_best(c, trials):  # the table is 6% optimistic the first time, then the budget is met
        checked.append(c.settings.target)
        first = len(checked) == 1
        return trials[0], {"measured_latency_ratio": 0.95 if first else 0.89, "measured_within_budget": not first,
                           "policies_measured": 1, "latency_table_bias": 1.06 if first else 1.0}  # fmt: skip

    monkeypatch.setattr(runner, "_measured_best", measured_best)
    run = runner.SearchRun(method="uniform", runs_dir=tmp_path, out=tmp_path / "p.json", progress=False)
    runner.run_search(lat, run)
    m = load_policy(tmp_path / "p.json").metrics
    assert checked == [0.9, 0.9]  # both searches' policies checked against the budget asked
    assert m["latency_tightened_to"] == pytest.approx(0.9 / 1.06) and m["measured_within_budget"] is True
    assert "latency0.849" in m["study"] and m["first_search"]["measured_latency_ratio"] == 0.95  # best trial's study
    assert "latency0.9-" in m["first_search"]["study"] and m["trials"] == m["first_search"]["trials"] == 1
    assert load_policy(tmp_path / "p.json").budget["target"] == 0.9
    # a table that was not optimistic: no second search, and the user is told the budget was missed
    monkeypatch.setattr(runner, "_measured_best", lambda c, trials: (trials[0], {
        "measured_latency_ratio": 0.93, "measured_within_budget": False, "policies_measured": 1,
        "latency_table_bias": 0.99}))  # fmt: skip
    with pytest.warns(UserWarning, match="no policy the search found measures within the latency budget 0.9"):
        runner.run_search(lat, replace(run, out=tmp_path / "q.json"))
    assert "latency_tightened_to" not in load_policy(tmp_path / "q.json").metrics


def test_measured_latency_is_the_least_round_median(monkeypatch):
    """Interference only adds time: one slow round must not set the figure."""
    import torch
    from torch.utils import benchmark

    from amc.deploy.measure import measure_latency
    from amc.runtime import Runtime

    medians = iter([0.020, 0.005, 0.010])
    calls: list[float] = []

    def fake(self, min_run_time):  # noqa: ANN001
        calls.append(min_run_time)
        return type("M", (), {"median": next(medians)})()

    monkeypatch.setattr(benchmark.Timer, "blocked_autorange", fake)
    net = torch.nn.Conv2d(3, 4, 3)
    assert measure_latency(net, Runtime.create("cpu", "fp32"), 1, (3, 8, 8), min_run_time=0.3) == 0.005
    assert calls == pytest.approx([0.1, 0.1, 0.1])
