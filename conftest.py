"""Shared by tests/ and notebooks/: make the data and checkpoint paths absolute, so subprocesses
and notebook kernels that run in other folders find them (CI passes them relative to the repo)."""

import os

for _var in ("AMC_DATA", "AMC_CHECKPOINTS", "AMC_TEST_CACHE"):
    _value = os.environ.get(_var)
    if _value and _value not in ("cifar10", "cifar100"):
        os.environ[_var] = os.path.abspath(_value)
