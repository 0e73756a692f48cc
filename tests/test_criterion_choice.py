"""``--criterion auto``: the channel criterion chosen per base and budget on unseen held-out images."""

from dataclasses import replace

import pytest

from amc.errors import AmcError
from amc.proxy import ProxyEvaluator, ProxyResult
from amc.search.criterion_choice import AUTO, CANDIDATES, check_criterion, choose_criterion, resolve_criterion


def _auto(ctx, size=3):
    """``ctx`` as build_context leaves it for ``--criterion auto``: settings say auto, the proxy
    (``size`` images, so the tiny held-out split has some left) cuts by the first candidate."""
    cfg = replace(ctx.settings.proxy, size=size, criterion=CANDIDATES[0])
    proxy = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg)
    return replace(ctx, settings=replace(ctx.settings, proxy=replace(cfg, criterion=AUTO)), proxy=proxy)


def _scored_by_criterion(monkeypatch, accuracy):
    seen = []

    def evaluate(self, keep, *a, **k):
        seen.append((self.config.criterion, self.config.size, self.config.calib_images))
        return ProxyResult(accuracy=accuracy[self.config.criterion], images=self.images)

    monkeypatch.setattr(ProxyEvaluator, "evaluate", evaluate)
    return seen


def test_auto_keeps_the_better_criterion_and_every_record_names_it(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    seen = _scored_by_criterion(monkeypatch, {"group-l1": 0.5, "l1": 0.75})
    out = resolve_criterion(_auto(ctx))
    assert out.settings.proxy.criterion == "l1" and out.proxy.config.criterion == "l1"
    assert out.proxy.config.size == 3  # the search's own proxy, not the choosing one
    assert out.policy(out.budget.keep([0.3] * len(out.graph.units)), "uniform").criterion == "l1"
    left = len(ctx.base.data.heldout) - 3
    assert {c for c, _, _ in seen} == set(CANDIDATES) and len(seen) == 2 * 3  # three count vectors each
    assert all(size == left and calib >= 1000 for _, size, calib in seen)  # unseen images, a larger recalibration


def test_a_tie_keeps_the_first_candidate_and_the_choice_is_cached(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    _scored_by_criterion(monkeypatch, {"group-l1": 0.5, "l1": 0.5})
    first = choose_criterion(_auto(ctx))
    assert first.criterion == CANDIDATES[0] and set(first.scores) == set(CANDIDATES)
    assert list(tmp_path.glob("criterion/resnet20-*.json"))

    def refuse(*a, **k):
        raise AssertionError("a cached choice was measured again")

    monkeypatch.setattr(ProxyEvaluator, "evaluate", refuse)
    assert choose_criterion(_auto(ctx)) == first


def test_the_real_measurement_picks_the_best_scoring_network(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    choice = choose_criterion(_auto(ctx))
    assert choice.images == len(ctx.base.data.heldout) - 3
    assert all(set(s) == {"uniform", "tp-global-l1", "tp-local-l1"} for s in choice.scores.values())
    best = max(CANDIDATES, key=lambda c: (max(choice.scores[c].values()), -CANDIDATES.index(c)))
    assert choice.criterion == best and choice.criterion in choice.summary()


def test_with_no_unseen_image_left_auto_falls_back_to_the_first_candidate(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="proxy-size"):
        out = resolve_criterion(_auto(ctx, size=len(ctx.base.data.heldout)))
        told = choose_criterion(_auto(ctx, size=len(ctx.base.data.heldout))).summary()
    assert out.settings.proxy.criterion == CANDIDATES[0] == out.proxy.config.criterion
    assert "no held-out image" in told


def test_a_context_not_asking_for_auto_is_left_alone(ctx):
    assert resolve_criterion(ctx) is ctx


def test_names_are_checked_before_any_work():
    check_criterion(AUTO)
    check_criterion("l1")
    with pytest.raises(AmcError, match="unknown criterion 'l7'.*auto"):
        check_criterion("l7")


def test_amc_search_with_auto_writes_a_policy_naming_the_chosen_criterion(tiny_data, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from helpers import tiny_checkpoint

    out = tmp_path / "best.json"
    args = ["search", "--model", "resnet20", "--data", str(tiny_data), "--checkpoint", str(tiny_checkpoint(tmp_path)),
            "--method", "uniform", "--flops", "0.5", "--criterion", "auto", "--proxy-size", "3", "--calib-images", "8",
            "--precision", "fp32", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "AMC_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "amc.cli", *args], capture_output=True, text=True, env=env, timeout=300,
                       cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    chosen = json.loads(out.read_text())["criterion"]
    assert chosen in CANDIDATES and f"--criterion auto: {chosen}" in r.stderr
    assert len(list((tmp_path / "cache" / "criterion").glob("*.json"))) == 1


def test_a_compare_sweep_with_auto_records_and_keeps_the_criterion_it_chose(tiny_data, tmp_path, monkeypatch):
    import json

    from helpers import tiny_checkpoint

    from amc.compare import CompareConfig, run_compare
    from amc.proxy import ProxyConfig
    from amc.runtime import Runtime
    from amc.search.context import SearchSettings

    monkeypatch.setenv("AMC_CACHE", str(tmp_path / "cache"))
    settings = SearchSettings(model="resnet20", data=str(tiny_data), checkpoint=str(tiny_checkpoint(tmp_path)),
                              proxy=ProxyConfig(size=3, calib_images=8, criterion=AUTO), allow_train=False)  # fmt: skip
    cfg = CompareConfig(budgets=(("macs", 0.5),), methods=("uniform",), latency_seconds=0.01, calib_images=8,
                        runtimes=())  # fmt: skip
    rt, out = Runtime.create("cpu", "fp32"), tmp_path / "out"
    rows = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    chosen = json.loads((out / "sweep.json").read_text())["criterion"]
    assert chosen in CANDIDATES and len(rows) == 1
    policy = json.loads(next(out.rglob("*uniform*.json")).read_text())
    assert policy["criterion"] == chosen
    again = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)  # resumes: same choice
    assert again == rows
