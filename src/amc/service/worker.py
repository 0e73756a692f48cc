"""``amc worker``: claim queued searches and run them with the same code as ``amc search``.

A worker claims one search at a time (atomically, see :mod:`amc.service.store`), runs it with
its study in the shared storage (``resume`` always on, so a search another worker was killed
in continues with every completed episode), heartbeats while it runs, and stops between
episodes when the search is cancelled. Each worker takes an equal share of the machine's cores
unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from amc.errors import AmcError
from amc.search.study import pid_alive
from amc.service.store import Job, JobStore

__all__ = ["Worker", "default_threads"]


def _workers_dir() -> Path:
    return Path(tempfile.gettempdir()) / "amc-workers"


def default_threads() -> int:
    """This machine's cores divided by the amc workers running on it (this one included)."""
    folder = _workers_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    live = [p for p in folder.iterdir() if p.name.isdigit() and pid_alive(int(p.name))]
    return max(1, (os.cpu_count() or 1) // max(1, len(live)))


class Worker:
    """Runs searches from ``store`` until stopped (or, with ``once``, until the queue is empty)."""

    def __init__(self, store: JobStore, storage: str, *, heartbeat_seconds: float = 10.0,
                 grace_seconds: float = 60.0, runs_dir: Path = Path("runs/service")) -> None:  # fmt: skip
        self.store, self.storage = store, storage
        self.heartbeat_seconds, self.grace_seconds = heartbeat_seconds, grace_seconds
        self.runs_dir = runs_dir
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def run_forever(self, poll_seconds: float = 2.0, once: bool = False) -> None:
        while True:
            job = self.store.claim(self.name, self.grace_seconds)
            if job is None:
                if once:
                    return
                time.sleep(poll_seconds)
                continue
            self.run_job(job)

    def run_job(self, job: Job) -> None:
        print(f"amc worker {self.name}: running search {job.id} (claim {job.claims})", flush=True)
        cancelled = threading.Event()
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, cancelled, done), daemon=True)
        beat.start()
        try:
            policy = self._search(job, cancelled)
        except AmcError as exc:
            self.store.finish(job.id, self.name, "failed", error=str(exc))
            print(f"amc worker {self.name}: search {job.id} failed: {exc}", flush=True)
            return
        except Exception as exc:  # a bug: keep the worker alive, record the error on the search
            self.store.finish(job.id, self.name, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            done.set()
        if cancelled.is_set():
            print(f"amc worker {self.name}: search {job.id} cancelled", flush=True)
            return
        self.store.finish(job.id, self.name, "done", policy=policy)
        print(f"amc worker {self.name}: search {job.id} done", flush=True)

    def _beat(self, job: Job, cancelled: threading.Event, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_seconds):
            if self.store.heartbeat(job.id, self.name) == "cancelled":
                cancelled.set()

    def _search(self, job: Job, cancelled: threading.Event) -> dict[str, Any]:
        import json

        from amc.jobs import run_search_request
        from amc.requests import SearchRequest, parse

        out = self.runs_dir / job.id / "policy.json"
        req = parse(SearchRequest, {**job.request, "storage": self.storage, "study": job.study, "resume": True,
                                    "out": str(out)})  # fmt: skip
        run_search_request(req, runs_dir=self.runs_dir, should_stop=cancelled.is_set, default_threads=default_threads())
        return dict(json.loads(out.read_text()))
