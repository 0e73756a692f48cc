"""``amc serve`` and ``amc worker``."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from amc.errors import AmcError

__all__ = ["serve", "worker"]

StorageOpt = Annotated[
    Optional[str], typer.Option(help="SQLAlchemy URL of the store (default sqlite:///runs/amc.db; postgresql://...)")
]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    allow_import_path: Annotated[
        bool, typer.Option("--allow-import-path", help="accept package.module:NAME models (they run code)")
    ] = False,
    max_body: Annotated[int, typer.Option(min=1024, help="largest request body, bytes")] = 64 * 1024,
) -> None:
    """Serve the search API and web page (start workers with 'amc worker' on any machine)."""
    import uvicorn

    from amc.service.app import ServiceConfig, create_app
    from amc.service.store import default_url

    token = os.environ.get("AMC_TOKEN") or None
    if not _loopback(host) and not token:
        raise AmcError(f"--host {host} is reachable from other machines: set AMC_TOKEN to a secret first")
    cfg = ServiceConfig(storage or default_url(), token, allow_import_path, max_body)
    typer.echo(f"amc serve: http://{host}:{port}/ (API docs at /docs), store {cfg.storage}", err=True)
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="warning")


def worker(
    storage: StorageOpt = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads (default: cores / workers here)")] = None,
    heartbeat: Annotated[float, typer.Option(min=0.1, help="seconds between heartbeats")] = 10.0,
    grace: Annotated[float, typer.Option(min=1, help="seconds without a heartbeat before a search is requeued")] = 60.0,
    runs_dir: Annotated[Path, typer.Option(help="agent checkpoints and policies")] = Path("runs/service"),
    once: Annotated[bool, typer.Option("--once", help="exit when the queue is empty")] = False,
) -> None:
    """Claim queued searches from the store and run them, one at a time."""
    from amc.runtime import set_threads
    from amc.service.store import JobStore, default_url
    from amc.service.worker import Worker, default_threads

    url = storage or default_url()
    set_threads(threads or default_threads())
    w = Worker(JobStore(url), url, heartbeat_seconds=heartbeat, grace_seconds=grace, runs_dir=runs_dir)
    typer.echo(f"amc worker {w.name}: waiting for searches in {url}", err=True)
    w.run_forever(once=once)
