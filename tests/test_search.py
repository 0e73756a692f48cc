"""Searchers end to end on a tiny real problem (resnet20, 3 synthetic classes)."""

import json

import numpy as np
import pytest

from amc.errors import AmcError
from amc.search.base import get_searcher, searcher_names
from amc.search.runner import SearchRun, run_search

CHANNEL_SEARCHERS = [n for n in searcher_names() if get_searcher(n).structure == "channels"]


@pytest.mark.parametrize("method", CHANNEL_SEARCHERS)
def test_every_method_writes_a_budget_meeting_policy(ctx, tmp_path, method):
    run = SearchRun(  # 6 episodes: DDPG's five reference heuristics are five of them
        method=method, episodes=6, warmup=2, runs_dir=tmp_path / "runs", out=tmp_path / "best.json", progress=False
    )
    policy = run_search(ctx, run)
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved["method"] == method and saved["model"] == "resnet20"
    assert policy.achieved["macs_ratio"] <= 0.5 + 1e-9
    assert set(saved["sparsity"]) == set(ctx.graph.names())
    if get_searcher(method).learns:
        assert policy.metrics["trials"] == 6
    assert 0 < saved["budget"]["used"] <= 1 + 1e-9


def test_proxy_is_deterministic_and_cached(ctx):
    keep = ctx.budget.keep(np.full(len(ctx.graph.units), 0.5))
    a = ctx.proxy.evaluate(keep)
    assert ctx.proxy.evaluate(keep.copy()) is a
    ctx.proxy._cache.clear()
    assert ctx.proxy.evaluate(keep).accuracy == a.accuracy


def test_resume_continues_to_the_requested_count(ctx, tmp_path):
    base = dict(method="ddpg", warmup=2, runs_dir=tmp_path / "runs", out=tmp_path / "best.json", progress=False)
    run_search(ctx, SearchRun(episodes=6, **base))  # the five reference heuristics, then the agent
    with pytest.raises(AmcError, match="--resume"):
        run_search(ctx, SearchRun(episodes=8, **base))
    policy = run_search(ctx, SearchRun(episodes=8, resume=True, **base))
    assert policy.metrics["trials"] == 8
    assert (tmp_path / "runs" / policy.metrics["study"] / "agent" / "buffer.pkl").exists()


def test_study_refuses_other_settings(ctx, tmp_path):
    run = SearchRun(
        method="random",
        episodes=2,
        runs_dir=tmp_path / "runs",
        out=tmp_path / "b.json",
        progress=False,
        study="shared-name",
    )
    run_search(ctx, run)
    other = SearchRun(
        method="random",
        episodes=3,
        reward="acc-flops",
        resume=True,
        runs_dir=tmp_path / "runs",
        out=tmp_path / "b.json",
        progress=False,
        study="shared-name",
    )
    with pytest.raises(AmcError, match="other settings .*reward"):
        run_search(ctx, other)


def test_study_refuses_other_agent_settings(ctx, tmp_path):
    base = dict(episodes=2, warmup=1, runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False,
                study="agent-name", reference=(), rescore=0)  # fmt: skip
    run_search(ctx, SearchRun(**base))
    with pytest.raises(AmcError, match="other settings .*agent"):
        run_search(ctx, SearchRun(**{**base, "episodes": 3, "critics": 2, "resume": True}))
    assert run_search(ctx, SearchRun(**{**base, "episodes": 3, "resume": True})).metrics["trials"] == 3


def test_a_study_of_the_previous_default_is_not_resumed_under_the_current_one(ctx, tmp_path):
    base = dict(episodes=2, warmup=1, runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False,
                study="old-default", reference=(), rescore=0)  # fmt: skip
    run_search(ctx, SearchRun(**base, sigma=1.0, warmup_noise="uniform", sigma_decay=0.95))  # as saved before
    with pytest.raises(AmcError, match="other settings .*agent"):
        run_search(ctx, SearchRun(**{**base, "episodes": 3, "resume": True}))


@pytest.mark.parametrize("method", ["sensitivity", "ddpg"])
def test_a_sensitivity_study_is_not_resumed_under_the_other_scan_metric(ctx, tmp_path, monkeypatch, method):
    from amc.search import baselines

    base = dict(method=method, episodes=2, warmup=1, runs_dir=tmp_path / "runs", out=tmp_path / "b.json",
                progress=False, study="s", reference=("sensitivity",), rescore=0)  # fmt: skip
    monkeypatch.setattr(baselines, "SCAN_METRIC", "accuracy")  # as every study before the choice was saved
    run_search(ctx, SearchRun(**base))
    monkeypatch.setattr(baselines, "SCAN_METRIC", "loss")
    with pytest.raises(AmcError, match="other settings .*sensitivity_by"):
        run_search(ctx, SearchRun(**{**base, "episodes": 3, "resume": True}))


def test_a_sensitivity_study_is_not_resumed_with_its_scan_on_other_images(ctx, tmp_path, monkeypatch):
    from amc.search import baselines

    base = dict(method="sensitivity", runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False, study="s")
    run_search(ctx, SearchRun(**base))  # scanned on the proxy's images, as every study before the choice
    monkeypatch.setattr(baselines, "SCAN_IMAGES", baselines.ScanImages("train", size=20))
    with pytest.raises(AmcError, match="other settings .*sensitivity_on"):
        run_search(ctx, SearchRun(**{**base, "resume": True}))


def test_heuristics_only_ddpg_uses_stay_out_of_other_studies(ctx, tmp_path):
    base = dict(method="random", runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False, study="r")
    run_search(ctx, SearchRun(episodes=2, **base))  # the runner's default heuristics, as amc compare passes them
    assert run_search(ctx, SearchRun(episodes=3, reference=(), resume=True, **base)).metrics["trials"] == 3


def test_warmup_must_be_below_episodes():
    from amc.requests import SearchRequest, parse

    with pytest.raises(AmcError, match="--warmup"):
        parse(SearchRequest, {"model": "resnet20", "episodes": 3, "warmup": 3})


@pytest.mark.parametrize("mode", ["local", "global"])
def test_unstructured_policies_zero_weights_without_changing_shapes(tiny_data, tmp_path, mode):
    import copy

    from helpers import tiny_checkpoint

    from amc.proxy import ProxyConfig
    from amc.pruning import unstructured
    from amc.runtime import Runtime
    from amc.search.context import SearchSettings, build_context

    settings = SearchSettings(
        model="resnet20",
        data=str(tiny_data),
        checkpoint=str(tiny_checkpoint(tmp_path)),
        target=0.3,
        kind="params",
        proxy=ProxyConfig(size=20, calib_images=10),
        allow_train=False,
        unstructured=True,
    )
    ctx = build_context(settings, Runtime.create("cpu", "fp32"))
    policy = run_search(
        ctx, SearchRun(method=f"unstructured-{mode}", runs_dir=tmp_path, out=tmp_path / "u.json", progress=False)
    )
    assert policy.structure == "weights" and policy.achieved["macs_ratio"] == 1.0
    net = unstructured.make_permanent(unstructured.apply_masks(copy.deepcopy(ctx.base.model), policy.sparsity))
    assert unstructured.nonzero_fraction(net) == pytest.approx(0.3, abs=0.01)
    assert [p.shape for p in net.parameters()] == [p.shape for p in ctx.base.model.parameters()]
    if mode == "local":
        assert len(set(round(s, 6) for s in policy.sparsity.values())) == 1


def test_env_spec_is_overridden_by_flags(tmp_path):
    from amc.requests import SearchRequest, parse, read_toml

    spec = tmp_path / "s.toml"
    spec.write_text('model = "resnet56"\nflops = 0.3\n[proxy]\nproxy_size = 300\n[agent]\nepisodes = 50\n')
    req = parse(SearchRequest, {**read_toml(spec), "episodes": 7})
    assert (req.model, req.flops, req.proxy_size, req.episodes) == ("resnet56", 0.3, 300, 7)
    assert req.calib_images == 250  # untouched default
    spec.write_text("modle = 'typo'\n")
    with pytest.raises(AmcError, match="unknown option --modle"):
        parse(SearchRequest, read_toml(spec))


def test_committed_env_specs_parse():
    from pathlib import Path

    from amc.requests import SearchRequest, parse, read_toml

    specs = sorted((Path(__file__).parent.parent / "envs").glob("*.toml"))
    assert len(specs) >= 5
    for path in specs:
        assert parse(SearchRequest, read_toml(path)).model


def test_a_rounded_search_is_its_own_study_beside_the_free_one(ctx, tmp_path):
    from dataclasses import replace

    from amc.pruning.budget import Budget
    from amc.search.context import SearchContext
    from amc.search.runner import SearchRun, run_search

    names = []
    # same storage: the second once failed as "made with other settings"; auto's choice (here 4) names its study,
    # so a search on another multiple never continues one whose trials were rounded otherwise
    for setting, m in ((1, 1), (8, 8), ("auto", 4)):
        settings = replace(ctx.settings, round_to=setting)
        rounded = SearchContext(
            settings, ctx.base, ctx.graph, Budget(ctx.graph, settings.target, round_to=m), ctx.proxy
        )
        run = SearchRun("uniform", storage=str(tmp_path / "s.journal"), out=tmp_path / f"{setting}.json",
                        runs_dir=tmp_path, progress=False)  # fmt: skip
        names.append(run_search(rounded, run).metrics["study"])
    assert names[1:] == [names[0] + "-round8", names[0] + "-round4"]


def test_ddpg_around_the_best_heuristic_starts_from_it_and_resumes_on_it(ctx, tmp_path, monkeypatch):
    import amc.search.baselines as baselines

    base = dict(method="ddpg", warmup=2, projection="spread", reference=("uniform", "global"),
                runs_dir=tmp_path / "runs", out=tmp_path / "best.json", progress=False)  # fmt: skip
    policy = run_search(ctx, SearchRun(episodes=4, **base))
    folder = tmp_path / "runs" / policy.metrics["study"]
    chosen = json.loads((folder / "reference.json").read_text())
    scored = {n: ctx.proxy.evaluate(baselines.HEURISTICS[n](ctx)).accuracy for n in ("uniform", "global")}
    assert chosen["heuristic"] == max(scored, key=lambda n: scored[n])
    assert chosen["proxy_accuracy"] == max(scored.values())
    assert policy.metrics["trials"] == 4  # the two heuristics are two of the four episodes
    assert policy.metrics["heldout_proxy_acc"] >= max(scored.values())
    monkeypatch.setattr(baselines, "HEURISTICS", {})  # a resumed search reads its reference back
    resumed = run_search(ctx, SearchRun(episodes=6, resume=True, **base))
    assert resumed.metrics["trials"] == 6


def test_a_torch_pruning_reference_that_fails_is_left_out_and_amc_s_own_are_not(ctx, tmp_path, monkeypatch):
    import amc.search.baselines as baselines

    def fails(ctx):
        raise RuntimeError("unsupported layer")

    monkeypatch.setitem(baselines.HEURISTICS, "tp-global-l1", fails)
    base = dict(method="ddpg", episodes=3, warmup=2, rescore=0, out=tmp_path / "best.json", progress=False)
    run = SearchRun(reference=("uniform", "tp-global-l1"), runs_dir=tmp_path / "a", **base)
    with pytest.warns(UserWarning, match="reference tp-global-l1 left out: RuntimeError: unsupported layer"):
        policy = run_search(ctx, run)
    chosen = json.loads((tmp_path / "a" / policy.metrics["study"] / "reference.json").read_text())
    assert list(chosen["candidates"]) == ["uniform"] and policy.metrics["trials"] == 3
    monkeypatch.setitem(baselines.HEURISTICS, "global", fails)  # a bug in amc's own heuristic is not hidden
    with pytest.raises(RuntimeError, match="unsupported layer"):
        run_search(ctx, SearchRun(reference=("uniform", "global"), runs_dir=tmp_path / "b", **base))


def test_with_amc_projection_the_reference_heuristics_are_scored_but_do_not_centre(ctx, tmp_path, monkeypatch):
    from amc.env import PruningEnv
    from amc.requests import SearchRequest, parse

    three = ["uniform", "global", "sensitivity"]
    five = [*three, "tp-global-l1", "tp-local-l1"]
    req = parse(SearchRequest, {"model": "resnet20", "flops": 0.5})  # the default: DDPG around the best heuristic
    assert (req.projection, req.reference, req.rescore, req.criterion) == ("spread", five, 8, "group-l1")
    assert req.warmup_noise == "tpe"  # since session 22; the previous warm-up is a preset
    local = parse(SearchRequest, {"model": "resnet20", "flops": 0.5, "preset": "local-warmup"}).model_dump()
    assert local == req.model_dump() | {"preset": "local-warmup", "warmup_noise": "sigma"}
    previous = {"sigma": 1.0, "warmup_noise": "uniform", "sigma_decay": 0.95, "proxy_size": 1000, "calib_images": 500,
                "reference": three, "criterion": "l1"}  # fmt: skip
    assert (
        parse(  # the previous default: AMC's noise and a larger proxy around the same reference
            SearchRequest, {"model": "resnet20", "flops": 0.5, "preset": "reference"}
        ).model_dump()
        == req.model_dump() | {"preset": "reference"} | previous
    )
    req = parse(SearchRequest, {"model": "resnet20", "preset": "amc"})  # the previous default
    assert (req.projection, req.reference, req.rescore, req.criterion) == ("amc", [], 0, "l1")
    req = parse(SearchRequest, {"model": "resnet20", "preset": "amc-paper", "criterion": "taylor"})
    assert req.criterion == "taylor"  # a preset fills only what is not given
    req = parse(SearchRequest, {"model": "resnet20", "preset": "amc", "reference": ["uniform"]})
    assert (req.projection, req.reference) == ("amc", ["uniform"])
    req = parse(SearchRequest, {"model": "resnet20", "method": "optuna"})
    assert (req.reference, req.rescore) == ([], 8)  # the heuristics seed DDPG only; every learner is re-scored
    req = parse(SearchRequest, {"model": "resnet20", "flops": 0.5, "preset": "amc-reference"})
    assert (req.projection, req.reference, req.rescore) == ("amc", three, 8)
    req = parse(SearchRequest, {"model": "resnet20", "preset": "amc-reference", "method": "optuna"})
    assert (req.reference, req.rescore) == ([], 8)  # the preset's heuristics seed DDPG only
    with pytest.raises(AmcError, match="--reference seeds DDPG"):
        parse(SearchRequest, {"model": "resnet20", "reference": ["uniform"], "method": "random"})

    def refuse(self, sparsity):
        raise AssertionError("the amc projection was centred on the reference")

    monkeypatch.setattr(PruningEnv, "set_reference", refuse)
    run = SearchRun(method="ddpg", episodes=4, warmup=2, projection="amc", reference=("uniform", "global"),
                    runs_dir=tmp_path, out=tmp_path / "best.json", progress=False)  # fmt: skip
    policy = run_search(ctx, run)
    chosen = json.loads((tmp_path / policy.metrics["study"] / "reference.json").read_text())
    assert policy.metrics["trials"] == 4 and policy.metrics["heldout_proxy_acc"] >= chosen["proxy_accuracy"]


def test_the_sensitivity_scan_is_cached_for_other_budgets_and_processes(ctx, monkeypatch, tmp_path):
    from amc.search import baselines
    from amc.search.baselines import sensitivity_keep, sensitivity_scan

    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    monkeypatch.setattr(baselines, "SCAN_IMAGES", baselines.ScanImages())  # the proxy counts the scan's cuts
    first = sensitivity_scan(ctx, progress=False)
    assert len(list((tmp_path / "sensitivity").glob("resnet20-*.json"))) == 1
    ctx.proxy._cache.clear()  # as in a new process
    before = ctx.proxy.evaluations
    tighter = ctx.tightened(0.4)
    np.testing.assert_array_equal(sensitivity_scan(tighter, progress=False), first)
    assert ctx.proxy.evaluations == before  # read back, not evaluated
    assert tighter.budget.ratio(sensitivity_keep(tighter, progress=False)) <= 0.4 + 1e-9


def test_a_training_image_scan_is_kept_apart_and_leaves_the_proxy_alone(ctx, monkeypatch, tmp_path):
    from dataclasses import replace

    from amc.proxy import ProxyEvaluator
    from amc.search.baselines import ScanImages, scan_evaluator, sensitivity_keep, sensitivity_scan

    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    one = (0.5,)  # one level: a scan of one cut per unit is enough here
    on_proxy = sensitivity_scan(ctx, one, progress=False, metric="loss")
    before = ctx.proxy.evaluations
    train = ScanImages("train", size=24, draw=1)
    on_train = sensitivity_scan(ctx, one, progress=False, metric="loss", images=train)
    assert ctx.proxy.evaluations == before  # scored by its own evaluator
    assert on_train.shape == on_proxy.shape and not np.allclose(on_train, on_proxy)
    assert len(list((tmp_path / "sensitivity").glob("*.json"))) == 2  # two scans, two cache files
    other_draw = sensitivity_scan(ctx, one, progress=False, metric="loss", images=ScanImages("train", 24, 2))
    assert not np.allclose(other_draw, on_train)
    keep = sensitivity_keep(ctx, one, progress=False, images=train)
    assert ctx.budget.ratio(keep) <= ctx.budget.target + 1e-9
    racing = replace(ctx, proxy=ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime,
                                               replace(ctx.proxy.config, confirm=2)))  # fmt: skip
    assert scan_evaluator(racing, train).config == scan_evaluator(ctx, train).config  # a racing search scans alike


def test_the_scan_records_loss_too_and_an_accuracy_only_cache_is_rescanned_for_it(ctx, monkeypatch, tmp_path):
    from amc.search import baselines
    from amc.search.baselines import sensitivity_keep, sensitivity_scan

    monkeypatch.setenv("AMC_CACHE", str(tmp_path))
    monkeypatch.setattr(baselines, "SCAN_IMAGES", baselines.ScanImages())  # the proxy counts the scan's cuts
    accuracy = sensitivity_scan(ctx, progress=False)
    loss = sensitivity_scan(ctx, progress=False, metric="loss")
    assert loss.shape == accuracy.shape and (loss > 0).all()
    # the deepest cut of a unit moves the cross-entropy further from the unpruned network's than its lightest, on
    # average over units (the tiny base is near chance, so further, not higher: cuts may lower its loss)
    unpruned = ctx.proxy.evaluate(ctx.budget.keep(np.zeros(len(ctx.graph.units)))).loss
    assert np.abs(loss[:, -1] - unpruned).mean() > np.abs(loss[:, 0] - unpruned).mean()
    (cached,) = (tmp_path / "sensitivity").glob("*.json")
    cached.write_text(json.dumps(accuracy.tolist()))  # what an earlier version kept
    ctx.proxy._cache.clear()
    before = ctx.proxy.evaluations
    np.testing.assert_array_equal(sensitivity_scan(ctx, progress=False), accuracy)
    assert ctx.proxy.evaluations == before
    np.testing.assert_allclose(sensitivity_scan(ctx, progress=False, metric="loss"), loss)
    assert ctx.proxy.evaluations > before  # scanned again: the old file had no loss
    keep = sensitivity_keep(ctx, progress=False, metric="loss")
    assert ctx.budget.fits(keep)


def test_twin_critics_make_the_agent_td3_and_survive_a_resume(ctx, tmp_path, monkeypatch):
    from amc.requests import SearchRequest
    from amc.search import agent as agents

    assert SearchRequest.model_validate({"model": "resnet20", "critics": 2}).critics == 2
    with pytest.raises(ValueError, match="critics"):
        SearchRequest.model_validate({"model": "resnet20", "critics": 3})
    seen = []
    real_learn = agents.AMCDDPG.learn

    def learn(self, *args, **kwargs):
        seen.append((len(self.critic.q_networks), self.policy_delay, self.target_policy_noise))
        return real_learn(self, *args, **kwargs)

    monkeypatch.setattr(agents.AMCDDPG, "learn", learn)
    base = dict(method="ddpg", warmup=2, critics=2, runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False)
    run_search(ctx, SearchRun(episodes=6, **base))  # the five reference heuristics, then the agent
    policy = run_search(ctx, SearchRun(episodes=8, resume=True, **base))
    assert seen == [(2, 2, 0.2), (2, 2, 0.2)]  # built as TD3, and loaded back as TD3
    assert policy.metrics["trials"] == 8 and policy.achieved["macs_ratio"] <= 0.5 + 1e-9


@pytest.mark.parametrize("noise", ["uniform", "sigma"])
def test_warmup_noise_sigma_explores_around_action_zero(ctx, tmp_path, noise):
    import optuna

    from amc.requests import SearchRequest, parse
    from amc.search import study as studies

    assert parse(SearchRequest, {"model": "resnet20", "warmup_noise": noise}).warmup_noise == noise
    run = SearchRun(method="ddpg", episodes=4, warmup=3, sigma=0.05, warmup_noise=noise, reference=(), rescore=0,
                    runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False, study="noise")  # fmt: skip
    run_search(ctx, run)
    study = optuna.load_study(study_name="noise", storage=studies.open_storage(None, tmp_path / "runs"))
    warmup = [a for t in studies.completed(study)[:3] for a in t.params.values()]
    assert len(warmup) == 3 * len(ctx.graph.units)
    if noise == "sigma":  # sigma 0.05 around 0: six sigmas is 0.3
        assert max(abs(a) for a in warmup) < 0.3
    else:  # uniform over [-1, 1]: dozens of draws, none beyond 0.3 has odds far below one in a million
        assert max(abs(a) for a in warmup) > 0.3
