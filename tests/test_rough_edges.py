"""What new users tripped over (#17): a policy finds its own data, a baseline re-run is reused,
a learned re-run says the two commands, and long work reports progress into a log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_checkpoint


def amc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "AMC_DATA"} | (env or {})
    return subprocess.run([sys.executable, "-m", "amc", *args], capture_output=True, text=True, cwd=cwd, env=full,
                          timeout=600)  # fmt: skip


@pytest.fixture()
def search_args(tiny_data: Path, tmp_path: Path) -> list[str]:
    ckpt = tiny_checkpoint(tmp_path)
    return ["search", "--model", "resnet20", "--data", str(tiny_data), "--checkpoint", str(ckpt), "--flops", "0.5",
            "--proxy-size", "20", "--calib-images", "10", "--precision", "fp32"]  # fmt: skip


def test_apply_finds_the_policy_data_set_without_amc_data(search_args, tiny_data, tmp_path):
    data = tmp_path / "mydata"
    shutil.copytree(tiny_data, data)
    args = [a if a != str(tiny_data) else str(data) for a in search_args]
    r = amc(*args, "--method", "uniform", "--out", "p.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    policy = json.loads((tmp_path / "p.json").read_text())
    assert policy["data"]["spec"] == str(data.resolve()) and policy["data"]["fingerprint"]
    apply = ["apply", "p.json", "--finetune-epochs", "0", "--no-latency", "--no-onnx", "--calib-images", "10",
             "--precision", "fp32"]  # fmt: skip
    r = amc(*apply, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data.rename(tmp_path / "moved")
    r = amc(*apply, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"data set '{data.name}' was at {data.resolve()}" in r.stderr and "--data" in r.stderr
    r = amc(*apply, "--data", str(tmp_path / "moved"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # the same files under another name: recognised by the fingerprint


def test_a_baseline_rerun_is_reused_and_a_learned_rerun_names_both_commands(search_args, tmp_path):
    first = amc(*search_args, "--method", "uniform", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = amc(*search_args, "--method", "uniform", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "reused" in again.stdout and json.loads((tmp_path / "policies/best.json").read_text())["metrics"]["reused"]
    learned = [*search_args, "--method", "random", "--episodes", "2"]
    done = amc(*learned, cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # amc's own warning is one line, as its errors are:
    assert "amc: warning: not re-scoring: the held-out split's" in done.stderr and "UserWarning" not in done.stderr
    r = amc(*learned, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--episodes 2 --resume'" in r.stderr and "--study resnet20-" in r.stderr


def test_progress_reaches_a_log_without_a_terminal(search_args, tmp_path):
    r = amc(*search_args, "--method", "random", "--episodes", "6", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("random resnet20:")]
    assert len(lines) >= 3, r.stderr  # every few percent, not only at the end
    assert "6/6 episode (100%)" in lines[-1] and "best_acc=" in lines[-1]


def test_training_progress_reaches_a_log(tiny_data, tmp_path):
    r = amc("train", "--model", "resnet20", "--data", str(tiny_data), "--epochs", "2", "--batch-size", "8",
            "--precision", "fp32", "--out", str(tmp_path / "b.pt"), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("training resnet20:")]
    assert len(lines) >= 3 and "(100%)" in lines[-1] and "loss=" in lines[-1], r.stderr
