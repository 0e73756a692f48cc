import json

import numpy as np
import pytest
import torch

from amc.apply import ApplyConfig, apply_policy
from amc.errors import AmcError
from amc.policy import load_policy
from amc.pruned import load_pruned


def test_apply_round_trip_gives_identical_outputs(ctx, policy, tmp_path):
    cfg = ApplyConfig(finetune_epochs=0.2, calib_images=20, latency=False)
    metrics = apply_policy(policy, ctx.base, ctx.graph, cfg, tmp_path, progress=False)
    assert metrics["macs_ratio"] == pytest.approx(policy.achieved["macs_ratio"])
    assert {"base_test_acc", "pruned_test_acc", "finetuned_test_acc"} <= set(metrics)
    model, meta = load_pruned(tmp_path / "pruned.pt")
    assert meta["keep"] == [int(k) for k in np.asarray(meta["keep"])]
    x = torch.randn(4, 3, 32, 32)
    saved = torch.load(tmp_path / "pruned.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    with torch.no_grad():
        assert model(x).shape == (4, 3)
    assert json.loads((tmp_path / "metrics.json").read_text())["params"] == metrics["params"]


def test_policy_for_another_model_or_checkpoint_is_refused(ctx, policy, tmp_path):
    from dataclasses import replace

    with pytest.raises(AmcError, match="for model 'resnet56'"):
        apply_policy(replace(policy, model="resnet56"), ctx.base, ctx.graph, ApplyConfig(), tmp_path)
    other = replace(policy, checkpoint={"path": "other.pt", "sha256": "0" * 64})
    with pytest.raises(AmcError, match="--force"):
        apply_policy(other, ctx.base, ctx.graph, ApplyConfig(), tmp_path)
    bad_names = replace(policy, sparsity={**policy.sparsity, "layer9.conv": 0.5})
    with pytest.raises(AmcError, match="'layer9.conv', which is not a prunable unit"):
        apply_policy(bad_names, ctx.base, ctx.graph, ApplyConfig(), tmp_path)
    assert not (tmp_path / "pruned.pt").exists()


EXAMPLES = sorted((__import__("pathlib").Path(__file__).parent.parent / "policies").glob("*.json"))


@pytest.mark.parametrize("policy_path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_committed_example_policies_are_valid_for_their_bases(shared, policy_path):
    from amc.apply import check_policy, policy_checkpoint, policy_keep
    from amc.base import open_base
    from amc.runtime import Runtime
    from amc.search.context import unit_graph_for

    policy = load_policy(policy_path)
    base = open_base(policy.model, str(shared.data), policy_checkpoint(policy), Runtime.create("cpu", "fp32"))
    graph = unit_graph_for(policy.model, base, policy.residual)
    check_policy(policy, base, graph)
    macs, _ = graph.cost(policy_keep(policy, graph))
    assert macs / graph.base_macs == pytest.approx(policy.achieved["macs_ratio"])


def test_amc_apply_on_a_committed_example(shared, tmp_path):
    import subprocess
    import sys

    repo = EXAMPLES[0].parent.parent
    path = repo / "policies" / "resnet56-ddpg-0.5.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "amc.cli",
            "apply",
            "policies/resnet56-ddpg-0.5.json",
            "--data",
            str(shared.small),
            "--force",  # a tenth of the data set the policy was searched on: other files
            "--finetune-epochs",
            "0",
            "--no-latency",
            "--no-onnx",
            "--calib-images",
            "500",
            "--out",
            str(tmp_path),
            "--json",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["macs_ratio"] == pytest.approx(json.loads(path.read_text())["achieved"]["macs_ratio"])
    assert metrics["pruned_heldout_acc"] > 0.7


def test_apply_times_base_and_pruned_on_onnxruntime_when_it_writes_onnx(ctx, policy, tmp_path):
    cfg = ApplyConfig(calib_images=10, onnx=True)
    metrics = apply_policy(policy, ctx.base, ctx.graph, cfg, tmp_path, progress=False)
    for who in ("base", "pruned"):
        assert all(metrics[f"{who}_onnxruntime_b{bs}_ms"] > 0 for bs in (1, 64))
        other = "torch-fp32" if ctx.base.runtime.precision == "bf16" else "torch-bf16"  # the other torch runtime
        assert all(metrics[f"{who}_latency_{other}_b{bs}_ms"] > 0 for bs in (1, 64))
    assert (tmp_path / "pruned.onnx").is_file()
