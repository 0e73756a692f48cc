"""The command line as a user meets it: exit codes, one-line errors, real-data results."""

import json
import os
import subprocess
import sys

import pytest
from helpers import make_imagefolder


def amc(*args, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "amc.cli", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )


def _one_line_error(r, fragment):
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr
    assert len(lines) == 1 and lines[0].startswith("amc: error:"), r.stderr
    assert fragment in lines[0]


def test_models_lists_macs():
    r = amc("models", "--json")
    rows = {row["model"]: row for row in json.loads(r.stdout)["models"]}
    assert rows["resnet56"]["macs"] == 125485696 and len(rows) == 7


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    make_imagefolder(root / "notest", classes=2, train=3, test=1)
    import shutil

    shutil.rmtree(root / "notest" / "test")
    (root / "junk.pt").write_bytes(b"junk")
    (root / "policy.json").write_text("{truncated")
    return root


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["evaluate", "--model", "resnet99"], "unknown model 'resnet99'"),
        (["evaluate", "--model", "resnet20", "--data", "{root}/missing"], "does not exist"),
        (["evaluate", "--model", "resnet20", "--data", "{root}/notest"], "no 'test/' folder"),
        (
            ["evaluate", "--model", "resnet20", "--data", "{tiny}", "--checkpoint", "{root}/junk.pt"],
            "not a readable checkpoint",
        ),
        (["evaluate", "--model", "resnet20", "--data", "{tiny}", "--checkpoint", "{root}/nope.pt"], "does not exist"),
        (["apply", "{root}/policy.json"], "not valid JSON"),
        (["search", "--model", "resnet20", "--flops", "0.5", "--params", "0.5"], "contradict"),
        (["search", "--model", "resnet20", "--criterion", "l7"], "unknown criterion"),
        (["search", "--model", "resnet20", "--method", "magic"], "unknown method"),
        (["evaluate", "--model", "resnet20", "--precision", "fp8"], "unknown precision"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bad_inputs, tiny_data, args, fragment):
    args = [a.format(root=bad_inputs, tiny=tiny_data) for a in args]
    _one_line_error(amc(*args), fragment)


def test_budget_errors(tiny_data, tmp_path):
    from helpers import tiny_checkpoint

    ck = str(tiny_checkpoint(tmp_path))
    common = [
        "search",
        "--model",
        "resnet20",
        "--data",
        str(tiny_data),
        "--checkpoint",
        ck,
        "--method",
        "uniform",
        "--out",
        str(tmp_path / "p.json"),
    ]
    for flops, fragment in (
        ("0", "--flops: input should be greater than 0, got 0"),
        ("1.5", "less than or equal to 1, got 1.5"),
        ("0.01", "smallest reachable"),
    ):
        _one_line_error(amc(*common, "--flops", flops, env={"AMC_CACHE": str(tmp_path / "c")}), fragment)
    assert not (tmp_path / "p.json").exists()


def test_missing_base_says_which_train_command(tiny_data, tmp_path):
    r = amc(
        "search",
        "--model",
        "resnet20",
        "--data",
        str(tiny_data),
        "--no-train",
        env={"AMC_CACHE": str(tmp_path), "AMC_CHECKPOINTS": str(tmp_path / "none")},
    )
    _one_line_error(r, f"amc train --model resnet20 --data {tiny_data}")


def test_evaluate_akamaster_resnet56_on_cifar10_jpeg(shared):
    r = amc(
        "evaluate",
        "--model",
        "resnet56",
        "--checkpoint",
        str(shared.akamaster(56)),
        "--data",
        str(shared.data),
        "--split",
        "test",
        "--json",
        env={"AMC_CACHE": os.environ.get("AMC_TEST_CACHE", os.environ["AMC_CACHE"])},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(0.832, abs=0.003)
