"""The FastAPI app of ``amc serve``: searches submitted, listed, watched and cancelled over HTTP.

Request bodies are :class:`~amc.requests.SearchRequest` fields, parsed by the same
:func:`~amc.requests.parse` as the command line, so a bad value is HTTP 422 with the line the
CLI prints. Fields that would let a client steer the server (where results are written, which
storage, legacy pickles) are set by the service, and import-path models (which run code) are
refused unless the server was started with ``--allow-import-path``. With a token configured,
every route but ``/health`` needs ``Authorization: Bearer TOKEN`` (or the ``amc_token`` cookie
the page sets from ``/?token=TOKEN``), compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import optuna
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from amc.errors import AmcError
from amc.requests import SearchRequest, parse
from amc.search.study import open_storage
from amc.service import pages
from amc.service.store import Job, JobStore

__all__ = ["ServiceConfig", "create_app", "SERVER_FIELDS"]

SERVER_FIELDS = ("storage", "study", "resume", "out")  # the service decides these


@dataclass(frozen=True)
class ServiceConfig:
    storage: str
    token: str | None = None
    allow_import_path: bool = False
    max_body_bytes: int = 64 * 1024


def check_submission(body: dict[str, Any], cfg: ServiceConfig) -> SearchRequest:
    """The typed request for a submitted body, or :class:`AmcError` (-> 422) naming the problem."""
    if not isinstance(body, dict):
        raise AmcError("the request body must be a JSON object of amc search options")
    steered = [k for k in SERVER_FIELDS if k in body]
    if steered:
        raise AmcError(f"'{steered[0]}' is set by the service, not by a request: remove it")
    req = parse(SearchRequest, body)
    if not cfg.allow_import_path and ":" in req.model:
        raise AmcError(
            f"model '{req.model}' is an import path, which runs code on the workers: the service refuses it "
            "unless started with --allow-import-path"
        )
    if req.trust_checkpoint and not cfg.allow_import_path:
        raise AmcError("trust_checkpoint loads a pickle (runs code): refused unless started with --allow-import-path")
    return req


def summary(
    job: Job, storage: optuna.storages.BaseStorage | None, trials: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A search as the API lists it: status, progress and the best policy found so far
    (``trials``: its completed trials, when the caller has read them already)."""
    episodes = int(job.request.get("episodes", 400))
    out: dict[str, Any] = {
        "id": job.id, "status": job.status, "model": job.request.get("model"), "method": job.request.get("method",
        "ddpg"), "request": job.request, "created": job.created.isoformat(), "worker": job.worker,
        "claims": job.claims, "error": job.error, "episodes": episodes, "completed": 0, "best": None,
    }  # fmt: skip
    trials = _trials(job, storage) if trials is None else trials
    if trials:
        best = max(trials, key=lambda t: t["reward"])
        out |= {"completed": len(trials), "best": best}
    out["progress"] = min(1.0, out["completed"] / max(episodes, 1)) if job.status != "done" else 1.0
    return out


def _trials(job: Job, storage: optuna.storages.BaseStorage | None) -> list[dict[str, Any]]:
    if storage is None:
        return []
    try:
        study = optuna.load_study(study_name=job.study, storage=storage)
    except KeyError:  # not started yet
        return []
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    keys = ("accuracy", "macs_ratio", "params_ratio", "sparsity")
    return [{"number": t.number, "reward": t.value, **{k: t.user_attrs.get(k) for k in keys}} for t in done]


def create_app(cfg: ServiceConfig) -> FastAPI:
    """The app over ``cfg.storage`` (a SQLAlchemy URL shared with the Optuna studies)."""
    store = JobStore(cfg.storage)
    app = FastAPI(title="amc", description="Submit, watch and fetch pruning-policy searches.", version="1")
    # opened now, not at the first request: its tables exist before any worker starts, and a
    # page never waits on workers that are creating them at the same time
    optuna_storage = open_storage(cfg.storage)
    _guard(app, cfg)
    _api(app, store, cfg, optuna_storage)
    _ui(app, store, optuna_storage)
    return app


def _guard(app: FastAPI, cfg: ServiceConfig) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > cfg.max_body_bytes):
            return JSONResponse({"detail": f"request body over {cfg.max_body_bytes} bytes"}, status_code=413)
        if cfg.token and request.url.path != "/health" and not _authorised(request, cfg.token):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        response = await call_next(request)
        query_token = request.query_params.get("token")
        if cfg.token and query_token and hmac.compare_digest(query_token.encode(), cfg.token.encode()):
            response.set_cookie("amc_token", query_token, httponly=True, samesite="strict")
        return response


def _authorised(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    candidates = [
        header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else "",
        request.cookies.get("amc_token", ""),
        request.query_params.get("token", "") if request.url.path == "/" else "",
    ]
    return any(c and hmac.compare_digest(c.encode(), token.encode()) for c in candidates)


def _api(app: FastAPI, store: JobStore, cfg: ServiceConfig, storage: optuna.storages.BaseStorage) -> None:
    def job_or_404(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no search '{job_id}'")
        return job

    @app.get("/health")
    def health() -> dict[str, Any]:
        jobs = store.list()
        return {"status": "ok", **{s: sum(j.status == s for j in jobs) for s in ("queued", "running")}}

    @app.post("/searches", status_code=201)
    def submit(body: Annotated[Any, Body(examples=[{"model": "resnet56", "flops": 0.5, "method": "ddpg"}])]) -> Any:
        try:
            req = check_submission(body, cfg)
        except AmcError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        given = req.model_dump(exclude_unset=True)
        return summary(store.submit(given), None)

    @app.get("/searches")
    def list_searches() -> list[dict[str, Any]]:
        return [summary(j, storage) for j in store.list()]

    @app.get("/searches/{job_id}")
    def get_search(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        trials = _trials(job, storage)
        return summary(job, storage, trials) | {"trials": trials, "curve": [t["reward"] for t in trials],
                                          "policy": job.policy}  # fmt: skip

    @app.get("/searches/{job_id}/policy")
    def get_policy(job_id: str) -> Any:
        job = job_or_404(job_id)
        if job.policy is None:
            raise HTTPException(404, f"search '{job_id}' is {job.status}: its policy exists once it is done")
        return job.policy

    @app.delete("/searches/{job_id}")
    def cancel(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        if not store.cancel(job_id):
            raise HTTPException(409, f"search '{job_id}' has already ended ({job.status})")
        return {"id": job_id, "status": "cancelled"}


def _ui(app: FastAPI, store: JobStore, storage: optuna.storages.BaseStorage) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return pages.index([summary(j, storage) for j in store.list()])

    @app.get("/ui/searches/{job_id}", response_class=HTMLResponse)
    def detail(job_id: str) -> str:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no search '{job_id}'")
        trials = _trials(job, storage)
        return pages.detail(summary(job, storage, trials), trials, job.policy)
