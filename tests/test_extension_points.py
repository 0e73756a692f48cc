"""The four worked examples of docs/ARCHITECTURE.md: a searcher through ``amc search``, a cost
model in a budget, a user ModelSpec pruned by ``amc search --method uniform``, and a request
parsed the same way by every entrance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from amc.checkpoints import save_checkpoint
from amc.cli import app
from amc.errors import AmcError

TESTS = Path(__file__).parent


def test_a_registered_searcher_runs_through_amc_search(tiny_data, tmp_path, monkeypatch):
    from helpers import tiny_checkpoint
    from plugins.examples import SpareTheStem  # noqa: F401  (registers it)

    from amc.search.base import searcher_names

    assert "spare-the-stem" in searcher_names()
    monkeypatch.chdir(tmp_path)
    args = ["search", "--model", "resnet20", "--data", str(tiny_data), "--checkpoint", str(tiny_checkpoint(tmp_path)),
            "--method", "spare-the-stem", "--flops", "0.5", "--proxy-size", "20", "--calib-images", "10",
            "--precision", "fp32", "--out", "p.json"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    policy = json.loads((tmp_path / "p.json").read_text())
    assert policy["method"] == "spare-the-stem"
    assert list(policy["sparsity"].values())[0] == 0.0
    assert policy["achieved"]["macs_ratio"] <= 0.5 + 1e-9


def test_a_cost_model_plugs_into_the_budget():
    from plugins.examples import KeptChannels

    from amc.models import build_model
    from amc.pruning.budget import Budget
    from amc.pruning.cost import register_cost_model
    from amc.pruning.units import UnitGraph
    from amc.search.baselines import uniform_keep_for

    register_cost_model("channels", KeptChannels)
    graph = UnitGraph(build_model("resnet20"))
    budget = Budget(graph, 0.4, kind="channels")
    keep = uniform_keep_for(budget)
    assert keep.sum() <= 0.4 * graph.channels.sum() + 1e-9
    assert keep.sum() >= 0.4 * graph.channels.sum() - len(keep)  # the top-up spends the budget
    assert budget.min_sparsity(0, graph.channels.astype(np.int64)) >= 0.0


def test_a_user_model_spec_is_searched_by_import_path(tiny_data, tmp_path):
    from plugins.examples import TinyNet

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, TinyNet(3), {"model": "plugins.examples:TINY"})
    cmd = [sys.executable, "-m", "amc", "search", "--model", "plugins.examples:TINY", "--data", str(tiny_data),
           "--checkpoint", str(ckpt), "--method", "uniform", "--flops", "0.5", "--proxy-size", "20",
           "--calib-images", "10", "--precision", "fp32", "--out", str(tmp_path / "p.json"),
           "--storage", str(tmp_path / "s.journal")]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(TESTS)}, timeout=300)
    assert r.returncode == 0, r.stderr
    policy = json.loads((tmp_path / "p.json").read_text())
    assert set(policy["sparsity"]) == {"body.0", "body.3"}  # both convs; the classifier "head" is never a unit
    assert policy["achieved"]["macs_ratio"] <= 0.5 + 1e-9


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


BAD = [
    ({"model": "resnet20", "flops": 1.5}, "--flops: input should be less than or equal to 1, got 1.5"),
    ({"model": "resnet20", "precision": "fp8"}, "--precision: input should be 'auto', 'bf16' or 'fp32', got fp8"),
    ({"model": "resnet20", "flops": 0.5, "params": 0.5}, "--flops and --params contradict each other"),
    ({"model": "resnet20", "proxy_size": "many"}, "--proxy-size: input should be a valid integer"),
    ({"model": "resnet20", "modle": 1}, "unknown option --modle"),
]


@pytest.mark.parametrize("values,message", BAD, ids=[m[:24] for _, m in BAD])
def test_a_bad_value_gets_the_same_line_from_cli_toml_and_python(tmp_path, values, message):
    from amc.requests import SearchRequest, parse, read_toml

    with pytest.raises(AmcError) as direct:
        parse(SearchRequest, values)
    assert str(direct.value).startswith(message)
    spec = tmp_path / "s.toml"
    spec.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    with pytest.raises(AmcError) as from_toml:
        parse(SearchRequest, read_toml(spec))
    assert str(from_toml.value) == str(direct.value)
    r = subprocess.run([sys.executable, "-m", "amc", "search", "--env", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == f"amc: error: {direct.value}"


def test_unknown_method_and_criterion_are_one_line_errors(tmp_path):
    for flag, value in (("--method", "nope"), ("--criterion", "nope")):
        r = subprocess.run([sys.executable, "-m", "amc", "search", "--model", "resnet20", flag, value],
                           capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"amc: error: {flag}: unknown") and r.stderr.count("\n") == 1


def test_request_reference_is_current():
    from amc.request_docs import markdown_reference

    doc = (TESTS.parent / "docs" / "REQUESTS.md").read_text()
    assert doc.strip() == markdown_reference().strip(), "regenerate: python -m amc.requests > docs/REQUESTS.md"
