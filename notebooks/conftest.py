"""Notebooks run under pytest (nbmake) on a tiny budget; they need the real data set."""

import os

import pytest

os.environ["AMC_NOTEBOOK_QUICK"] = "1"  # inherited by the notebook kernels
if os.environ.get("AMC_TEST_CACHE"):
    os.environ["AMC_CACHE"] = os.environ["AMC_TEST_CACHE"]  # reuse the decoded data of the test run


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AMC_DATA") and os.environ.get("AMC_CHECKPOINTS"):
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return  # under CI they run anyway and fail without the data, as they must
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.skip(reason="notebooks need AMC_DATA and AMC_CHECKPOINTS"))
