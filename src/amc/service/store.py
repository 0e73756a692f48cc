"""The service's queue of searches, in the same database as the Optuna studies.

One table, ``amc_searches``: a row per submitted search with its request (JSON), status
(queued, running, done, failed, cancelled), the worker running it, its heartbeat and, when
done, its policy. Workers claim rows with one conditional UPDATE (``... WHERE id = ? AND status
= 'queued'``): the database serialises it, so two workers never get the same search, on SQLite
(one machine) as on PostgreSQL (many). A running search whose worker stops heartbeating is put
back in the queue; its Optuna study keeps every completed episode, so the next worker resumes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = ["Job", "JobStore", "STATUSES", "default_url"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
_meta = sa.MetaData()
searches = sa.Table(
    "amc_searches",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("started", sa.DateTime),
    sa.Column("finished", sa.DateTime),
    sa.Column("worker", sa.String(128)),
    sa.Column("heartbeat", sa.DateTime),
    sa.Column("claims", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("policy", sa.Text),
)


def default_url() -> str:
    """``sqlite:///runs/amc.db``: one machine; pass ``postgresql://...`` for many."""
    return "sqlite:///runs/amc.db"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    request: dict[str, Any]
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    worker: str | None
    claims: int
    error: str | None
    policy: dict[str, Any] | None

    @property
    def study(self) -> str:
        """The Optuna study that holds this search's evaluated policies."""
        return f"svc-{self.id}"


class JobStore:
    """Searches queued, claimed, heartbeated and finished in one SQL database."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.url = url
        self.engine = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
        _meta.create_all(self.engine, checkfirst=True)

    def submit(self, request: dict[str, Any]) -> Job:
        job_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as c:
            c.execute(searches.insert().values(id=job_id, status="queued", request=json.dumps(request),
                                               created=_now(), claims=0))  # fmt: skip
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as c:
            row = c.execute(searches.select().where(searches.c.id == job_id)).mappings().first()
        return _job(row) if row else None

    def list(self) -> list[Job]:
        with self.engine.connect() as c:
            rows = c.execute(searches.select().order_by(searches.c.created.desc())).mappings().all()
        return [_job(r) for r in rows]

    def claim(self, worker: str, grace_seconds: float) -> Job | None:
        """Requeue searches whose worker stopped heartbeating, then take the oldest queued one
        (None if there is none)."""
        self.requeue_stale(grace_seconds)
        for _ in range(10):  # another worker may win the race for a row: try the next one
            with self.engine.connect() as c:
                first = c.execute(
                    sa.select(searches.c.id).where(searches.c.status == "queued").order_by(searches.c.created).limit(1)
                ).first()
            if first is None:
                return None
            with self.engine.begin() as c:
                won = c.execute(
                    searches.update()
                    .where(searches.c.id == first[0], searches.c.status == "queued")
                    .values(
                        status="running", worker=worker, started=_now(), heartbeat=_now(), claims=searches.c.claims + 1
                    )  # fmt: skip
                ).rowcount
            if won == 1:
                return self.get(first[0])
        return None

    def heartbeat(self, job_id: str, worker: str) -> str:
        """Record that ``worker`` is alive; returns the search's status (a cancel shows here)."""
        with self.engine.begin() as c:
            c.execute(searches.update().where(searches.c.id == job_id, searches.c.worker == worker,
                                              searches.c.status == "running").values(heartbeat=_now()))  # fmt: skip
            row = c.execute(sa.select(searches.c.status).where(searches.c.id == job_id)).first()
        return str(row[0]) if row else "cancelled"

    def requeue_stale(self, grace_seconds: float) -> int:
        cutoff = _now() - dt.timedelta(seconds=grace_seconds)
        with self.engine.begin() as c:
            return int(c.execute(
                searches.update()
                .where(searches.c.status == "running", searches.c.heartbeat < cutoff)
                .values(status="queued", worker=None)
            ).rowcount)  # fmt: skip

    def finish(self, job_id: str, worker: str, status: str, policy: dict[str, Any] | None = None,
               error: str | None = None) -> None:  # fmt: skip
        with self.engine.begin() as c:
            c.execute(
                searches.update()
                .where(searches.c.id == job_id, searches.c.worker == worker, searches.c.status == "running")
                .values(status=status, finished=_now(), error=error, policy=json.dumps(policy) if policy else None)
            )

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running search; False if it had already ended (or is unknown)."""
        with self.engine.begin() as c:
            n = c.execute(
                searches.update()
                .where(searches.c.id == job_id, searches.c.status.in_(("queued", "running")))
                .values(status="cancelled", finished=_now())
            ).rowcount
        return bool(n)


def _job(row: Any) -> Job:
    return Job(
        id=row["id"],
        status=row["status"],
        request=json.loads(row["request"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        worker=row["worker"],
        claims=int(row["claims"] or 0),
        error=row["error"],
        policy=json.loads(row["policy"]) if row["policy"] else None,
    )
