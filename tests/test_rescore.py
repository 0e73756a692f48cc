"""Re-scoring a search's best candidates on held-out images its proxy never saw."""

import json
from dataclasses import replace

import optuna
import pytest
import torch

from amc.data import Split
from amc.proxy import ProxyEvaluator
from amc.search.rescore import candidates
from amc.search.runner import SearchRun, run_search
from amc.search.study import open_storage


def _trial(number, value, keep):
    t = optuna.trial.create_trial(value=value, user_attrs={"keep": keep, "accuracy": value, "macs_ratio": 0.5})
    t.number = number
    return t


def test_candidates_are_the_best_distinct_policies_and_the_reference():
    trials = [_trial(0, 0.5, [1, 1]), _trial(1, 0.9, [2, 2]), _trial(2, 0.9, [2, 2]), _trial(3, 0.8, [3, 1])]
    trials.append(_trial(4, 0.7, [1, 3]))
    assert [t.number for t in candidates(trials, 2)] == [1, 3]  # the repeat of trial 1's policy is not a second
    assert [t.number for t in candidates(trials, 2, [[1, 1]])] == [1, 3, 0]
    assert [t.number for t in candidates(trials, 2, [[3, 1], [9, 9]])] == [1, 3]  # already in; unknown: ignored


def test_a_skipped_subset_shares_no_image_with_the_first():
    split = Split(torch.arange(100).float().view(100, 1, 1, 1), torch.zeros(100, dtype=torch.long))
    first = set(split.subset(30, seed=4).images.flatten().tolist())
    second = set(split.subset(50, seed=4, skip=30).images.flatten().tolist())
    assert len(first) == 30 and len(second) == 50 and not first & second
    assert len(split.subset(None, seed=4, skip=90)) == 10


@pytest.fixture(scope="module")
def small_proxy_ctx(ctx):
    """``ctx`` with a 3-image search proxy, so the tiny held-out split has images left over."""
    cfg = replace(ctx.settings.proxy, size=3)
    proxy = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, cfg)
    return replace(ctx, settings=replace(ctx.settings, proxy=cfg), proxy=proxy)


def test_the_search_returns_the_best_candidate_on_unseen_images_and_resumes(small_proxy_ctx, tmp_path, monkeypatch):
    ctx = small_proxy_ctx
    base = dict(method="ddpg", warmup=2, projection="spread", reference=("uniform", "global"), rescore=3,
                runs_dir=tmp_path / "runs", out=tmp_path / "best.json", progress=False)  # fmt: skip
    policy = run_search(ctx, SearchRun(episodes=6, **base))
    m = policy.metrics
    assert m["rescore_images"] == len(ctx.base.data.heldout) - 3 > 0
    rows = m["rescored"]
    folder = tmp_path / "runs" / m["study"]
    recorded = json.loads((folder / "reference.json").read_text())
    study = optuna.load_study(study_name=m["study"], storage=open_storage(None, tmp_path / "runs"))
    keeps = {t.number: t.user_attrs["keep"] for t in study.trials}
    rescored = [keeps[r["trial"]] for r in rows]
    assert recorded["keep"] == recorded["candidates"][recorded["heuristic"]]
    assert set(recorded["candidates"]) == {"uniform", "global"}
    for keep in recorded["candidates"].values():  # the reference and the heuristic it beat: always candidates
        assert keep in rescored
    assert 2 <= len(rows) <= 5
    best = max(rows, key=lambda r: (r["rescore_acc"], -r["trial"]))
    assert m["best_trial"] == best["trial"] and m["heldout_rescore_acc"] == best["rescore_acc"]
    chosen = study.trials[m["best_trial"]].user_attrs["sparsity"]
    assert list(policy.sparsity.values()) == pytest.approx(chosen)  # the policy written is the chosen one

    def refuse(*a, **k):
        raise AssertionError("a resumed search re-scored a policy it had scored")

    monkeypatch.setattr(ProxyEvaluator, "evaluate", refuse)
    again = run_search(ctx, SearchRun(episodes=6, resume=True, **base))
    assert again.metrics["rescored"] == rows and again.metrics["best_trial"] == m["best_trial"]


def test_every_heuristic_the_reference_was_chosen_from_is_rescored(small_proxy_ctx, tmp_path):
    """With one best candidate, the heuristic that lost to the reference on the proxy is still re-scored
    (the proxy's choice between them is as noisy as between the search's own policies)."""
    run = SearchRun(method="ddpg", episodes=4, warmup=2, projection="spread", reference=("uniform", "global"),
                    rescore=1, runs_dir=tmp_path, out=tmp_path / "best.json", progress=False)  # fmt: skip
    m = run_search(small_proxy_ctx, run).metrics
    recorded = json.loads((tmp_path / m["study"] / "reference.json").read_text())
    study = optuna.load_study(study_name=m["study"], storage=open_storage(None, tmp_path))
    rescored = [study.trials[r["trial"]].user_attrs["keep"] for r in m["rescored"]]
    assert all(keep in rescored for keep in recorded["candidates"].values())


def test_rescoring_without_images_left_warns_and_keeps_the_proxy_choice(ctx, tmp_path):
    run = SearchRun(method="random", episodes=3, rescore=2, runs_dir=tmp_path, out=tmp_path / "b.json", progress=False)
    with pytest.warns(UserWarning, match="--proxy-size"):
        policy = run_search(ctx, run)
    assert "rescored" not in policy.metrics


def test_a_search_on_the_loss_reward_returns_the_lowest_loss(ctx, tmp_path):
    run = SearchRun(method="random", episodes=4, reward="loss", runs_dir=tmp_path, out=tmp_path / "b.json",
                    progress=False)  # fmt: skip
    policy = run_search(ctx, run)
    study = optuna.load_study(study_name=policy.metrics["study"], storage=open_storage(None, tmp_path))
    losses = {t.number: t.user_attrs["loss"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(losses) == 4
    assert all(0 < v < 20 for v in losses.values())
    assert policy.metrics["best_trial"] == min(losses, key=lambda n: (losses[n], n))
    assert policy.metrics["reward"] == pytest.approx(-min(losses.values()))
