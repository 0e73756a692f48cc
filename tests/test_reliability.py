"""Interrupted work: a search killed with SIGKILL resumes with nothing completed lost."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from helpers import tiny_checkpoint

from amc.search.study import completed, open_storage


def _count(journal, study):
    try:
        return len(completed(optuna.load_study(study_name=study, storage=open_storage(str(journal)))))
    except KeyError:
        return 0


@pytest.mark.parametrize("method,episodes,extra", [("random", 12, []), ("ddpg", 10, ["--warmup", "3"])])
def test_sigkill_mid_search_then_resume(tiny_data, tmp_path, method, episodes, extra):
    journal = tmp_path / "runs" / "amc.journal"
    args = [
        sys.executable,
        "-m",
        "amc.cli",
        "search",
        "--model",
        "resnet20",
        "--data",
        str(tiny_data),
        "--checkpoint",
        str(tiny_checkpoint(tmp_path)),
        "--method",
        method,
        "--episodes",
        str(episodes),
        "--storage",
        str(journal),
        "--study",
        "killme",
        "--proxy-size",
        "30",
        "--calib-images",
        "20",
        "--precision",
        "fp32",
        "--out",
        str(tmp_path / "best.json"),
        *extra,
    ]
    env = {**os.environ, "AMC_CACHE": os.environ["AMC_CACHE"]}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _count(journal, "killme") < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {
        t.number: t.value for t in completed(optuna.load_study(study_name="killme", storage=open_storage(str(journal))))
    }
    assert 3 <= len(before) < episodes, "the kill must land mid-search"
    best_before = max(before.values())

    done = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = {
        t.number: t.value for t in completed(optuna.load_study(study_name="killme", storage=open_storage(str(journal))))
    }
    assert len(after) == episodes
    assert all(after[n] == v for n, v in before.items())  # nothing completed was lost or changed
    assert max(after.values()) >= best_before


def test_a_lock_left_by_a_killed_process_is_freed(tmp_path, monkeypatch):
    # a process killed while appending leaves Optuna's lock (a symlink to the journal); the next one
    # must free it after the grace period instead of waiting for ever, with a relative path too
    from amc.search import study as studies

    monkeypatch.setattr(studies, "LOCK_GRACE_SECONDS", 1)
    monkeypatch.chdir(tmp_path)
    storage = open_storage("runs/amc.journal")
    optuna.create_study(study_name="first", storage=storage)
    os.symlink(str(tmp_path / "runs/amc.journal"), "runs/amc.journal.lock")  # what Optuna's lock leaves
    started = time.monotonic()
    optuna.create_study(study_name="second", storage=open_storage("runs/amc.journal"))
    assert time.monotonic() - started < 20
    assert not os.path.lexists("runs/amc.journal.lock")
    names = {s.study_name for s in optuna.get_all_study_summaries(open_storage("runs/amc.journal"))}
    assert names == {"first", "second"}


def test_a_dangling_lock_of_an_earlier_version_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    optuna.create_study(study_name="first", storage=open_storage("runs/amc.journal"))
    os.symlink("runs/amc.journal", "runs/amc.journal.lock")  # relative: resolves to runs/runs/amc.journal
    optuna.create_study(study_name="second", storage=open_storage("runs/amc.journal"))
    assert not os.path.lexists("runs/amc.journal.lock")
