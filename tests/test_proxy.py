"""The proxy's BatchNorm modes (recalibrated or each batch's own statistics) and its allocator settings."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from amc.proxy import ProxyConfig, ProxyEvaluator, proxy_identity
from amc.pruning.recalibrate import use_batch_statistics


def test_batch_statistics_normalise_each_batch_with_dropout_off():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Dropout(0.5), nn.LazyLinear(2))
    x = torch.randn(8, 3, 6, 6) * 3 + 2
    net(x)  # materialise the lazy layer
    net[1].running_mean.fill_(100.0)  # stale statistics: eval mode would be far off
    expected = copy.deepcopy(net)
    expected[1].train()
    with torch.no_grad():
        want = expected[:3](x)
        stale = copy.deepcopy(net).eval()[:3](x)
        use_batch_statistics(net)
        got, again = net(x), net(x)
    assert not net.training and net[1].running_mean is None
    assert torch.allclose(net[:3](x), want, atol=1e-5) and not torch.allclose(stale, want, atol=1e-2)
    assert torch.equal(got, again)  # dropout off


def test_batch_proxy_skips_recalibration_and_leaves_the_base_intact(ctx):
    cfg = replace(ctx.proxy.config, bn="batch")
    ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg)
    before = {k: v.clone() for k, v in ctx.base.model.state_dict().items()}
    keep = ctx.budget.keep(np.full(len(ctx.graph.units), 0.5))
    result = ev.evaluate(keep)
    assert ev.builder.calib == [] and 0.0 <= result.accuracy <= 1.0
    after = ctx.base.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert ctx.proxy.evaluate(keep).accuracy >= 0  # the recalibrating proxy still works on the same base


def test_a_training_split_evaluator_scores_images_none_of_its_calibration_uses(ctx):
    cfg = replace(ctx.proxy.config, size=20, calib_images=16, batch_size=8)
    ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg, split="train")
    scored = torch.cat([x for x, _ in ev._eval]).flatten(1)
    calib = torch.cat(ev.builder.calib).flatten(1)
    train = ctx.base.data.train
    assert ev.images == 20 and len(calib) == 16 and len(train) >= 36
    assert not (torch.cdist(scored, calib) < 1e-6).any()  # no image is both
    held = torch.cat([x for x, _ in ctx.proxy._eval]).flatten(1)
    assert not (torch.cdist(scored, held) < 1e-6).any()  # nor a held-out one
    assert 0.0 <= ev.evaluate(ctx.budget.keep(np.zeros(len(ctx.graph.units)))).accuracy <= 1.0


def test_identity_names_the_bn_mode_only_when_it_is_not_the_default():
    assert "bn" not in proxy_identity(ProxyConfig())  # studies saved before the field existed still match
    assert proxy_identity(ProxyConfig(bn="batch"))["bn"] == "batch"
    assert "confirm" not in proxy_identity(ProxyConfig()) and proxy_identity(ProxyConfig(confirm=9))["confirm"] == 9


def _images(batches):
    return torch.cat([x for x, _ in batches]).flatten(1)


def test_racing_scores_only_a_would_be_best_on_further_images_which_rescoring_skips(ctx):
    from amc.search.rescore import unseen_evaluator

    cfg = replace(ctx.proxy.config, size=2, confirm=3)
    ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg)
    first = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, replace(cfg, confirm=0))
    further = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime,
                             replace(cfg, size=3, confirm=0), skip=2)  # fmt: skip
    n = len(ctx.graph.units)
    a, b = (ctx.budget.keep(np.full(n, s)) for s in (0.2, 0.6))
    raced = ev.evaluate(a)  # nothing is confirmed yet: the first policy races
    want = (2 * first.evaluate(a).accuracy + 3 * further.evaluate(a).accuracy) / 5
    assert raced.images == 5 and raced.accuracy == pytest.approx(want) and ev.best_confirmed == raced.accuracy
    assert "confirm" in raced.seconds and ev.totals["confirm"] == raced.seconds["confirm"]  # counted as a stage
    ev.best_confirmed = 2.0  # no first score reaches it: the policy is scored on the first images only
    plain = ev.evaluate(b)
    assert plain.images == 2 and plain.accuracy == first.evaluate(b).accuracy and "confirm" not in plain.seconds
    assert ev.evaluate(a) is raced  # cached, whatever the best is now
    used = torch.cat([_images(ev._eval), _images(ev._confirm)])
    assert len(used) == 5 and not (torch.cdist(_images(ev._eval), _images(ev._confirm)) < 1e-6).any()
    rescorer = unseen_evaluator(replace(ctx, settings=replace(ctx.settings, proxy=cfg), proxy=ev), 4000)
    assert rescorer is not None and rescorer.images == len(ctx.base.data.heldout) - 5
    assert not (torch.cdist(_images(rescorer._eval), used) < 1e-6).any()  # re-scoring sees neither set


def test_freed_memory_is_kept_unless_the_system_allocator_is_asked_for(monkeypatch):
    import sys

    from amc.runtime import keep_freed_memory

    monkeypatch.setenv("AMC_MALLOC", "system")
    assert keep_freed_memory() is False
    monkeypatch.delenv("AMC_MALLOC")
    assert keep_freed_memory() is sys.platform.startswith("linux")  # glibc on Linux (CI's Debian)


def test_a_search_request_carries_its_racing_images_to_the_proxy():
    from amc.errors import AmcError
    from amc.jobs import search_settings
    from amc.requests import SearchRequest, parse

    assert search_settings(parse(SearchRequest, {"model": "resnet20", "confirm_images": 1000})).proxy.confirm == 1000
    with pytest.raises(AmcError, match="--confirm-images: input should be greater than or equal to 0"):
        parse(SearchRequest, {"model": "resnet20", "confirm_images": -1})
