"""Fixtures: tiny data the tests make themselves, an isolated cache, and the real data.

Tests that need ``../shared`` (the real cifar10-jpeg and the zoo) take the ``shared`` fixture:
it reads AMC_DATA and AMC_CHECKPOINTS, skips when they are unset on a developer's machine, and
fails under CI=true, where a skipped real-data test would hide a broken setup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@dataclass(frozen=True)
class Shared:
    data: Path  # the whole real data set: for the tests whose figures must match ../shared/README.md
    checkpoints: Path
    small: Path  # 3,000 training (300 held-out) and 600 test images of it: for everything else

    def zoo(self, model: str) -> Path:
        return self.checkpoints / "zoo" / f"{model}-cifar10jpeg.pt"

    def akamaster(self, depth: int) -> Path:
        return next((self.checkpoints / "akamaster").glob(f"resnet{depth}-*.th"))


def _need(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {reason}: CI must run the real-data tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Shared:
    data, ckpt = os.environ.get("AMC_DATA"), os.environ.get("AMC_CHECKPOINTS")
    if not data or not ckpt:
        _need("AMC_DATA and AMC_CHECKPOINTS are not set")
    if not (Path(data) / "train").is_dir() or not (Path(ckpt) / "zoo").is_dir():
        _need(f"{data} or {ckpt}/zoo is missing")
    from helpers import make_real_subset

    small = make_real_subset(Path(data), tmp_path_factory.mktemp("real-subset"))
    return Shared(Path(data), Path(ckpt), small)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own cache; real-data tests share the developer's cache."""
    cache = os.environ.get("AMC_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("AMC_CACHE", cache)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    from helpers import make_imagefolder

    return make_imagefolder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def ctx(tiny_data, tmp_path_factory):
    """A search context on the tiny data set (resnet20, fp32), one per test module."""
    from helpers import tiny_context

    return tiny_context(tiny_data, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def policy(ctx, tmp_path_factory):
    """The uniform policy for ``ctx``'s budget, as written by ``amc search --method uniform``."""
    from amc.policy import load_policy
    from amc.search.runner import SearchRun, run_search

    out = tmp_path_factory.mktemp("pol")
    run_search(ctx, SearchRun(method="uniform", runs_dir=out, out=out / "uniform.json", progress=False))
    return load_policy(out / "uniform.json")
