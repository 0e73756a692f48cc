"""The package's shape rules, checked on every run: files under 400 lines, functions under 60,
and no import-time side effects (matplotlib's backend, Optuna's logging, gymnasium's registry)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "amc"
FILES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SRC)) for p in FILES])
def test_file_and_function_lengths(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path} has {len(text.splitlines())} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, f"{path}: functions over 60 lines: {long}"


def test_importing_every_module_changes_nothing_global():
    modules = [
        "amc." + ".".join(p.relative_to(SRC).with_suffix("").parts).replace(".__init__", "")
        for p in FILES
        if p.name != "__main__.py"
    ]
    code = f"""
import logging, matplotlib, optuna, gymnasium
backend, level = matplotlib.get_backend(), optuna.logging.get_verbosity()
envs, threads = set(gymnasium.registry), __import__("torch").get_num_threads()
for m in {modules!r}:
    __import__(m.removesuffix(".__init__"))
assert matplotlib.get_backend() == backend, "matplotlib backend changed"
assert optuna.logging.get_verbosity() == level, "optuna logging changed"
assert set(gymnasium.registry) == envs, "gymnasium registry changed"
assert __import__("torch").get_num_threads() == threads, "torch threads changed"
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
