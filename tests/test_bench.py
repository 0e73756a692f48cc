"""Every benchmark script runs in its --quick mode on the real data and writes its JSON (the
full runs' numbers are in docs/RESULTS.md; these runs only prove the scripts work, on a
tenth of it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench"
SCRIPTS = {
    "search_speed.py": "search_speed-quick.json",
    "policy_quality.py": "policy_quality-resnet20-quick.json",
    "latency.py": "latency-resnet20-quick.json",
    "proxy_fidelity.py": "proxy_fidelity-quick.json",
    "engine_baselines.py": "engine_baselines-resnet20-quick.json",
    "structured_vs_unstructured.py": "structured_vs_unstructured-resnet20-quick.json",
    "iterative_vs_oneshot.py": "iterative_vs_oneshot-resnet20-quick.json",
    "workers_throughput.py": "workers_throughput-quick.json",
    "latency_table.py": "latency_table-quick.json",
    "latency_budget.py": "latency_budget-resnet20-onnxruntime-b1-quick.json",
    "recovery_curves.py": "recovery_curves-resnet20-quick.json",
    "runtimes.py": "runtimes-b1-quick.json",
    "memory_format.py": "memory_format-quick.json",
    "proxy_noise.py": "proxy_noise-resnet20-quick.json",
    "recipe.py": "recipe-resnet20-quick.json",
    "rescore_size.py": "rescore_size-resnet20-quick.json",
    "proxy_settings.py": "proxy_settings-resnet20-quick.json",
    "allocator.py": "allocator-quick.json",
    "sensitivity_metric.py": "sensitivity_metric-resnet20-quick.json",
}


def test_every_benchmark_script_is_covered():
    reports = {
        "_common.py",
        "make_results_md.py",
        "results_tables.py",
        "search_defaults_report.py",
        "heldout_agreement.py",
        "frontiers.py",  # tested in test_compare.py
    }
    scripts = {p.name for p in BENCH.glob("*.py")} - reports
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_quick_mode_writes_its_results(shared, script, tmp_path):
    env = {**os.environ, "AMC_BENCH_RESULTS": str(tmp_path), "AMC_DATA": str(shared.small)}
    env["AMC_CHECKPOINTS"] = str(shared.checkpoints)
    # search_speed runs twice with --resume: the second finds the search done and keeps the first's figures
    extra = ["--resume"] if script == "search_speed.py" else []
    result = None
    for _ in range(2 if extra else 1):
        done = subprocess.run(
            [sys.executable, str(BENCH / script), *extra, "--quick"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        first, result = result, json.loads((tmp_path / SCRIPTS[script]).read_text())
    assert result["command"].endswith("--quick") and result["rows"]
    if script == "search_speed.py":  # the default DDPG's sensitivity scan is timed apart from its episodes
        assert all(isinstance(r["scan_seconds"], float) for r in result["rows"])
    if first is not None:
        assert result["rows"] == first["rows"] and first["rows"][0]["episodes_before_resume"] == 0


def test_heldout_agreement_reads_the_measured_rows(tmp_path):
    """The held-out vs test report (it runs no network) counts each policy once, skips fine-tuned
    and quick rows, and finds where the two splits order near-tied policies differently."""

    def result(name, rows, **args):
        args = {"model": "m", "flops": 0.5, "finetune_epochs": 0.0, "quick": False, **args}
        (tmp_path / f"policy_quality-{name}.json").write_text(json.dumps({"args": args, "rows": rows}))

    pairs = [(0.90, 0.80), (0.895, 0.81), (0.85, 0.76), (0.80, 0.70), (0.70, 0.60), (0.60, 0.50)]
    result("a", [{"method": f"p{i}", "heldout_acc": h, "test_acc": t} for i, (h, t) in enumerate(pairs)])
    result("b", [{"method": "again", "heldout_acc": 0.90, "test_acc": 0.80}])  # the same policy measured again
    result("ft", [{"method": "tuned", "heldout_acc": 0.99, "test_acc": 0.99}], finetune_epochs=0.3)
    env = {**os.environ, "AMC_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(BENCH / "heldout_agreement.py"), "--top", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads((tmp_path / "heldout_agreement.json").read_text())["rows"]
    assert (row["policies"], row["top"]) == (6, 3)
    assert row["best_heldout"]["heldout_acc"] == 0.90 and row["best_heldout_test_rank"] == 2
    assert row["near_pairs"] == 1 and row["near_pairs_same_order"] == 0.0  # 0.90 vs 0.895: test says otherwise
    assert abs(row["gap_min_top"] - 0.085) < 1e-9 and abs(row["gap_max_top"] - 0.10) < 1e-9


def test_results_md_is_rendered_from_the_committed_results():
    """docs/RESULTS.md is what bench/make_results_md.py renders from bench/results now: a result
    added or changed without re-rendering the page fails here."""
    env = {k: v for k, v in os.environ.items() if k != "AMC_BENCH_RESULTS"}
    out = subprocess.run([sys.executable, str(BENCH / "make_results_md.py")], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    page = (BENCH.parent / "docs" / "RESULTS.md").read_text()
    assert out.stdout == page, "docs/RESULTS.md is stale: python bench/make_results_md.py > docs/RESULTS.md"


def _policy_file(path: Path, target: float, criterion: str = "group-l1") -> Path:
    policy = {"schema": "amc-policy/1", "model": "resnet20", "checkpoint": {}, "dataset": "cifar10-jpeg",
              "budget": {"kind": "macs", "target": target, "max_sparsity": 0.8, "round_to": 1},
              "achieved": {"macs_ratio": target, "params_ratio": target}, "sparsity": {"layer1.0.conv1": 0.5},
              "method": "ddpg", "criterion": criterion}  # fmt: skip
    path.write_text(json.dumps(policy))
    return path


@pytest.mark.parametrize(("target", "criterion", "why"), [(0.5, "group-l1", "searched for 0.5 of the macs"),
                                                          (0.3, "l1", "with the l1 criterion")])  # fmt: skip
def test_policy_quality_refuses_a_policy_of_another_budget(tmp_path, target, criterion, why):
    """A policy searched for another budget or criterion is not a row of this table: one line,
    exit 2, before any network is built, and no result written (a 0.5 policy once sat in a 0.7 table)."""
    policy = _policy_file(tmp_path / "p.json", target, criterion)
    env = {**os.environ, "AMC_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run(
        [sys.executable, str(BENCH / "policy_quality.py"), "--flops", "0.3", "--criterion", "group-l1",
         "--policies", f"ddpg@s0={policy}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]  # (before it, at most torch's CUDA_HOME notice on import)
    assert why in last and last.startswith("policy_quality: --policies") and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


def test_policy_quality_under_auto_takes_a_policy_of_either_candidate_criterion(tmp_path, monkeypatch):
    """``--criterion auto`` is resolved after the base is opened; before that a policy searched with
    either candidate may be a row, any other criterion may not (and after, only the chosen one)."""
    import argparse
    import importlib

    from amc.policy import load_policy

    monkeypatch.syspath_prepend(str(BENCH))
    pq = importlib.import_module("policy_quality")
    a = argparse.Namespace(flops=0.3, criterion="auto")
    for criterion, ok in (("l1", True), ("group-l1", True), ("taylor", False)):
        policy = load_policy(_policy_file(tmp_path / f"{criterion}.json", 0.3, criterion))
        assert (pq.budget_mismatch(policy, a) == "") is ok
    resolved = argparse.Namespace(flops=0.3, criterion="l1")
    assert "with the group-l1 criterion" in pq.budget_mismatch(load_policy(tmp_path / "group-l1.json"), resolved)
