"""Notebooks run under pytest (nbmake) on a tiny budget and on a tenth of the real data set
(the tests' ``make_real_subset``); they need the real data set."""

import os
import sys
from pathlib import Path

import pytest

os.environ["AMC_NOTEBOOK_QUICK"] = "1"  # inherited by the notebook kernels
if os.environ.get("AMC_TEST_CACHE"):
    os.environ["AMC_CACHE"] = os.environ["AMC_TEST_CACHE"]  # reuse the decoded data of the test run
_SAVED = pytest.StashKey[str]()  # AMC_DATA as it was before a notebook ran


def _is_notebook(item: pytest.Item) -> bool:
    return str(item.fspath).endswith(".ipynb")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AMC_DATA") and os.environ.get("AMC_CHECKPOINTS"):
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return  # under CI they run anyway and fail without the data, as they must
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.skip(reason="notebooks need AMC_DATA and AMC_CHECKPOINTS"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """While a notebook runs, its kernel sees AMC_DATA pointing at the small copy."""
    data = os.environ.get("AMC_DATA")
    if not _is_notebook(item) or not data or not (Path(data) / "train").is_dir():
        return
    tests = str(Path(__file__).parent.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from helpers import make_real_subset

    root = item.config._tmp_path_factory.getbasetemp() / "notebook-data"  # type: ignore[attr-defined]
    item.stash[_SAVED] = data
    os.environ["AMC_DATA"] = str(make_real_subset(Path(data), root))


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if _SAVED in item.stash:
        os.environ["AMC_DATA"] = item.stash[_SAVED]

