"""Every evaluated policy is an Optuna trial: one storage for every searcher.

The default storage is a journal file under ``runs/`` (safe against crashes, shareable by
processes on one machine); ``--storage`` takes any Optuna URL (``sqlite:///runs/amc.db``,
``postgresql://user:pass@host/db``) or a ``.journal`` path. A study is named by ``--study``
(default: model, data set, budget and method), remembers the settings it was made with, and is
continued with ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from amc.errors import AmcError
from amc.scoring import Episode

__all__ = [
    "open_storage",
    "open_study",
    "record_trial",
    "trial_attrs",
    "completed",
    "best_trial",
    "default_study_name",
    "StudyExists",
    "pid_alive",
]


class StudyExists(Exception):
    """A new search was asked for under the name of a study that already has results."""

    def __init__(self, name: str, n: int) -> None:
        super().__init__(name)
        self.name, self.n = name, n

    def message_with_commands(self, argv: list[str] | None = None) -> str:
        """One line with the two commands that go on: resume it, or start a new study."""
        import shlex
        import sys

        args = list(sys.argv if argv is None else argv)
        base = shlex.join(["amc", *[a for a in args[1:] if a != "--resume"]]) if args else "amc search ..."
        return (
            f"study '{self.name}' already has {self.n} evaluated policies: continue it with "
            f"'{base} --resume', or start another with '{base} --study {self.name}-2'"
        )


LOCK_GRACE_SECONDS = 30  # a journal lock unchanged this long is a killed process's: freed


def open_storage(url: str | None, runs_dir: Path = Path("runs")) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (``None``: the journal file ``runs/amc.journal``)."""
    if url is None or url.endswith(".journal") or "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

        path = Path(url) if url else runs_dir / "amc.journal"
        path.parent.mkdir(parents=True, exist_ok=True)
        # an absolute path: Optuna's lock is a symlink to the journal, and its grace period (which frees
        # the lock a killed process left) stats through it; a relative target dangles, and every later
        # search would wait on that lock for ever
        journal = str(path.resolve())
        _free_dangling_lock(journal)
        lock = JournalFileSymlinkLock(journal, grace_period=LOCK_GRACE_SECONDS)
        return JournalStorage(JournalFileBackend(journal, lock_obj=lock))
    import time
    import warnings

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if url.startswith(("postgresql", "mysql")):
                    return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
                return optuna.storages.RDBStorage(url)
        except Exception as exc:  # connection and driver errors are the user's to fix
            racing = "already exists" in str(exc) or "UniqueViolation" in str(exc) or "duplicate key" in str(exc)
            if racing and attempt < 4:  # workers starting together on a fresh database create its tables twice
                time.sleep(0.5 + attempt)
                continue
            raise AmcError(f"cannot open storage {url}: {str(exc).splitlines()[0][:160]}") from None
    raise AssertionError("unreachable")


def _free_dangling_lock(journal: str) -> None:
    """Remove a lock symlink that points nowhere: earlier versions locked through a relative path,
    and such a lock left by a killed process is never freed by Optuna's grace period."""
    lock = journal + ".lock"
    if os.path.islink(lock) and not os.path.exists(lock):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def default_study_name(model: str, dataset: str, kind: str, target: float, method: str) -> str:
    return f"{model}-{dataset}-{kind}{target:g}-{method}"


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    fingerprint: dict[str, Any],
    *,
    resume: bool,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create study ``name``, or reopen it with ``resume`` if its settings match ``fingerprint``."""
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name in existing and not resume:
        study = optuna.load_study(study_name=name, storage=storage)
        n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if n:
            raise StudyExists(name, n)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", sampler=sampler, load_if_exists=True
    )
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", json.loads(json.dumps(fingerprint, default=str)))
    elif saved != json.loads(json.dumps(fingerprint, default=str)):
        diff = sorted(
            k
            for k in set(saved) | set(fingerprint)
            if saved.get(k) != json.loads(json.dumps(fingerprint, default=str)).get(k)
        )
        raise AmcError(
            f"study '{name}' was made with other settings ({', '.join(diff)}): "
            "use the same flags to resume, or --study NEW_NAME (amc compare: another --storage)"
        )
    if resume:
        fail_dead_trials(study)
    return study


def worker_id() -> str:
    """``host:pid`` of this process, stored on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials of dead processes on this host as FAIL (a SIGKILL leaves them
    RUNNING forever); returns how many. Trials of other hosts are left to their workers."""
    host = socket.gethostname()
    failed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        w_host, _, pid = worker.rpartition(":")
        if w_host == host and pid.isdigit() and not pid_alive(int(pid)):
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            failed += 1
    return failed


def trial_attrs(episode: Episode, method: str) -> dict[str, Any]:
    """JSON-safe user attributes of one evaluated policy."""
    return {
        "method": method,
        "keep": [int(k) for k in episode.keep],
        "sparsity": [float(s) for s in episode.sparsity],
        "accuracy": float(episode.accuracy),
        **({} if math.isnan(episode.loss) else {"loss": float(episode.loss)}),
        "macs_ratio": float(episode.macs_ratio),
        "params_ratio": float(episode.params_ratio),
    }


def record_trial(
    study: optuna.Study, unit_names: list[str], actions: list[float], result: Episode, method: str, episode: int
) -> None:
    """Add a finished policy (e.g. a DDPG episode) to ``study`` as a complete trial."""
    trial = optuna.trial.create_trial(
        params={n: float(np.clip(a, -1, 1)) for n, a in zip(unit_names, actions)},
        distributions={n: FloatDistribution(-1.0, 1.0) for n in unit_names},
        value=float(result.reward),
        user_attrs={**trial_attrs(result, method), "episode": episode},
    )
    study.add_trial(trial)


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = completed(study)
    return max(done, key=lambda t: (t.value, -t.number)) if done else None
