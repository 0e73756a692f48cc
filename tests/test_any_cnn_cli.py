"""A model the user brings, end to end through the command line: torchvision's RegNet-X (grouped
convolutions) by import path: ``amc search --method uniform``, ``amc apply``, ``amc export``; and
a vision transformer refused in one line before anything is trained."""

import json
import os
import subprocess
import sys

import torch
import torchvision.models as tvm

from amc.checkpoints import save_checkpoint

MODEL = "torchvision.models:regnet_x_400mf"


def _amc(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    return subprocess.run(
        [sys.executable, "-m", "amc", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_search_apply_export_a_torchvision_model(tiny_data, tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "regnet.pt"
    save_checkpoint(ckpt, tvm.regnet_x_400mf(num_classes=3), {"model": MODEL})
    common = ["--precision", "fp32", "--device", "cpu"]
    r = _amc("search", "--model", MODEL, "--data", str(tiny_data), "--checkpoint", str(ckpt), "--method", "uniform",
             "--flops", "0.5", "--proxy-size", "20", "--calib-images", "10", "--out", str(tmp_path / "p.json"),
             "--storage", str(tmp_path / "s.journal"), *common)  # fmt: skip
    assert r.returncode == 0, r.stderr
    policy = json.loads((tmp_path / "p.json").read_text())
    assert policy["achieved"]["macs_ratio"] <= 0.5 + 1e-9
    assert "cannot cut safely" not in r.stderr  # grouped convolutions are pruned, not left out
    r = _amc("apply", str(tmp_path / "p.json"), "--finetune-epochs", "0", "--calib-images", "10", "--no-latency",
             "--out", str(tmp_path / "applied"), *common)  # fmt: skip
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "applied" / "metrics.json").read_text())
    assert metrics["macs_ratio"] <= 0.5 + 1e-9
    assert (tmp_path / "applied" / "pruned.onnx").is_file()
    r = _amc("export", str(tmp_path / "applied" / "pruned.pt"), "--format", "pt2", "--out", str(tmp_path / "m.pt2"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.pt2").is_file()


def test_a_vision_transformer_is_refused_before_training(tiny_data, tmp_path):
    r = _amc("search", "--model", "torchvision.models:swin_t", "--data", str(tiny_data), "--method", "uniform",
             "--storage", str(tmp_path / "s.journal"), "--out", str(tmp_path / "p.json"), timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert "attention layer" in r.stderr and "out of its scope" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()
