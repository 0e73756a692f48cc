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
    scripts = {p.name for p in BENCH.glob("*.py")} - {"_common.py", "make_results_md.py", "search_defaults_report.py"}
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_quick_mode_writes_its_results(shared, script, tmp_path):
    env = {**os.environ, "AMC_BENCH_RESULTS": str(tmp_path), "AMC_DATA": str(shared.small)}
    env["AMC_CHECKPOINTS"] = str(shared.checkpoints)
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / SCRIPTS[script]).read_text())
    assert result["command"].endswith("--quick") and result["rows"]
