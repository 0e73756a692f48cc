"""amc export: ONNX (checked with onnxruntime) and torch.export, for every built-in model,
unpruned and pruned, and from the command line on an ``amc apply`` output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from amc.errors import AmcError
from amc.export import export_model
from amc.models import BUILTIN, build_model, get_spec
from amc.pruning.prune import prune_model
from amc.pruning.units import UnitGraph


# one of each architecture family (resnet32/44/56 are resnet20 with more blocks)
@pytest.mark.parametrize("name", [n for n in BUILTIN if n not in ("resnet32", "resnet44", "resnet56")])
def test_onnx_equals_torch_unpruned_and_pruned(name, tmp_path):
    torch.manual_seed(0)
    base = build_model(name).eval()
    spec = get_spec(name)
    graph = UnitGraph(base, spec.input_size, rule=spec.unit_rule)
    rng = np.random.default_rng(0)
    kept = [np.sort(rng.choice(u.channels, max(1, (2 * u.channels) // 5), replace=False)) for u in graph.units]
    for label, net in (("base", base), ("pruned", prune_model(base, graph, kept))):
        info = export_model(net, spec.input_size, tmp_path / f"{label}.onnx", "onnx")
        assert info["max_abs_difference"] <= 1e-4 * max(1.0, info["output_scale"])
        # one self-contained file: loads from its bytes, with nothing written beside it
        session = ort.InferenceSession((tmp_path / f"{label}.onnx").read_bytes(), providers=["CPUExecutionProvider"])
        x = torch.randn(5, *spec.input_size)  # a batch size the export never saw
        with torch.no_grad():
            want = net(x).numpy()
            assert np.abs(session.run(None, {"x": x.numpy()})[0] - want).max() <= 1e-4 * max(1, np.abs(want).max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.onnx", "pruned.onnx"]


def test_torch_export_program_runs_without_amc(tmp_path):
    net = build_model("resnet20").eval()
    export_model(net, (3, 32, 32), tmp_path / "r.pt2", "pt2")
    load = f"torch.export.load({str(tmp_path / 'r.pt2')!r}).module()"
    code = f"import torch; m = {load}; print(m(torch.zeros(3, 3, 32, 32)).shape)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "torch.Size([3, 10])" in r.stdout, r.stderr


def test_cli_exports_an_applied_policy_and_a_base(ctx, policy, tmp_path):
    from amc.apply import ApplyConfig, apply_policy

    apply_policy(policy, ctx.base, ctx.graph, ApplyConfig(finetune_epochs=0, latency=False, calib_images=10), tmp_path)
    r = subprocess.run([sys.executable, "-m", "amc", "export", str(tmp_path / "pruned.pt")], capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and (tmp_path / "pruned.onnx").is_file(), r.stderr
    assert "pruned resnet20" in r.stdout
    r = subprocess.run([sys.executable, "-m", "amc", "export", str(ctx.base.checkpoint), "--format", "pt2"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "pass --model" in r.stderr
    out = tmp_path / "base.pt2"
    r = subprocess.run([sys.executable, "-m", "amc", "export", str(ctx.base.checkpoint), "--model", "resnet20",
                        "--format", "pt2", "--out", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and out.is_file(), r.stderr


def test_a_missing_source_is_one_line(tmp_path):
    with pytest.raises(AmcError, match="does not exist"):
        from amc.export import load_network

        load_network(str(tmp_path / "nope.pt"), None)
