import numpy as np
import pytest
import torch

from amc.apply import ApplyConfig, apply_policy
from amc.errors import AmcError
from amc.iterative import IterativeConfig, prune_iteratively, step_keeps
from amc.macs import count_macs
from amc.pruned import load_pruned


def test_step_keeps_remove_equal_shares_and_land_on_the_target():
    channels, keep = np.array([16, 32, 10]), np.array([8, 4, 10])
    steps = step_keeps(channels, keep, 4)
    assert len(steps) == 4
    np.testing.assert_array_equal(steps[-1], keep)
    np.testing.assert_array_equal(steps[0], [14, 25, 10])  # a quarter of the 8 and 28 removed
    assert all((a >= b).all() for a, b in zip([channels, *steps], steps))
    np.testing.assert_array_equal(step_keeps(channels, keep, 1)[0], keep)
    with pytest.raises(ValueError):
        step_keeps(channels, keep, 0)


@pytest.mark.parametrize("criterion", ["taylor", "l1"])
def test_iterative_pruning_reaches_the_policy_without_touching_the_base(ctx, criterion):
    before = {k: v.clone() for k, v in ctx.base.model.state_dict().items()}
    keep = (ctx.graph.channels * 0.5).astype(int)
    cfg = IterativeConfig(steps=3, epochs_per_step=0.05, criterion=criterion, calib_images=20)
    net = prune_iteratively(ctx.base.model, ctx.graph, keep, ctx.base.data, ctx.base.runtime, cfg)
    assert count_macs(net, ctx.graph.input_size) == pytest.approx(ctx.graph.cost(keep)[0])
    modules = dict(net.named_modules())
    assert [modules[u.name].out_channels for u in ctx.graph.units] == keep.tolist()
    assert all(torch.equal(before[k], v) for k, v in ctx.base.model.state_dict().items())


def test_apply_iteratively_saves_a_model_of_the_policys_size(ctx, policy, tmp_path):
    cfg = ApplyConfig(finetune_epochs=0.1, calib_images=20, latency=False, iterative=2, criterion="taylor")
    m = apply_policy(policy, ctx.base, ctx.graph, cfg, tmp_path, progress=False)
    assert m["macs_ratio"] == pytest.approx(policy.achieved["macs_ratio"])
    assert {"pruned_test_acc", "finetuned_test_acc"} <= set(m)
    model, _ = load_pruned(tmp_path / "pruned.pt")
    assert count_macs(model, ctx.graph.input_size) == m["macs"]


@pytest.mark.parametrize(
    "cfg, message",
    [
        (ApplyConfig(iterative=0), "at least 1"),
        (ApplyConfig(criterion="magic"), "unknown criterion 'magic'"),
        (ApplyConfig(iterative=2, distill=True), "does not combine with --distill"),
    ],
)
def test_bad_iterative_settings_are_refused(ctx, policy, tmp_path, cfg, message):
    with pytest.raises(AmcError, match=message):
        apply_policy(policy, ctx.base, ctx.graph, cfg, tmp_path, progress=False)
    assert not (tmp_path / "pruned.pt").exists()
