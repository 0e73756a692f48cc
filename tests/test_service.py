"""amc as a service: the HTTP contract (in process), then real ``amc serve`` and ``amc worker``
processes on loopback: a submitted search equals ``amc search``'s, a killed worker's search is
finished by another with no episode lost, and each queued search runs exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from fastapi.testclient import TestClient
from helpers import tiny_checkpoint

from amc.service.app import ServiceConfig, create_app


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(ServiceConfig(f"sqlite:///{tmp_path}/s.db")))


BAD_BODIES = [
    ({"model": "resnet20", "flops": 1.5}, "--flops: input should be less than or equal to 1, got 1.5"),
    ({"model": "resnet20", "method": "ddpg", "episodes": 4, "warmup": 9}, "--warmup (9) must be smaller"),
    ({"flops": 0.5}, "--model: field required"),
    ({"model": "resnet20", "colour": "red"}, "unknown option --colour"),
    ({"model": "resnet20", "out": "/etc/passwd"}, "'out' is set by the service"),
    ({"model": "os:system"}, "is an import path, which runs code"),
    ({"model": "resnet20", "trust_checkpoint": True}, "loads a pickle"),
    ([1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("body,message", BAD_BODIES, ids=[m[:20] for _, m in BAD_BODIES])
def test_bad_bodies_are_422_with_the_cli_line(client, body, message):
    r = client.post("/searches", json=body)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_the_cli_gives_the_same_line_as_the_api(client, tmp_path):
    r = client.post("/searches", json={"model": "resnet20", "flops": "1.5"})
    cli = subprocess.run([sys.executable, "-m", "amc", "search", "--model", "resnet20", "--flops", "1.5"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 2 and cli.stderr.strip() == f"amc: error: {r.json()['detail']}"


def test_submit_list_get_cancel(client):
    r = client.post("/searches", json={"model": "resnet20", "flops": 0.5, "method": "random", "episodes": 3})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["progress"] == 0
    assert [s["id"] for s in client.get("/searches").json()] == [job["id"]]
    assert client.get(f"/searches/{job['id']}/policy").status_code == 404
    assert client.delete(f"/searches/{job['id']}").json()["status"] == "cancelled"
    assert client.delete(f"/searches/{job['id']}").status_code == 409
    assert client.get("/searches/nope").status_code == 404
    assert client.get("/health").json() == {"status": "ok", "queued": 0, "running": 0}
    assert "amc searches" in client.get("/").text and job["id"] in client.get("/").text
    assert "/openapi.json" in client.get("/docs").text


def test_a_token_is_required_when_configured_and_bodies_are_limited(tmp_path):
    app = create_app(ServiceConfig(f"sqlite:///{tmp_path}/s.db", token="s3cret", max_body_bytes=2048))
    c = TestClient(app)
    assert c.get("/searches").status_code == 401
    assert c.get("/searches", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/searches", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/health").status_code == 200
    assert c.get("/?token=s3cret").status_code == 200 and c.get("/searches").status_code == 200  # cookie set
    big = {"model": "resnet20", "study": "x" * 4096}
    assert c.post("/searches", json=big, headers={"Authorization": "Bearer s3cret"}).status_code == 413


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AMC_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "amc", "serve", "--host", "0.0.0.0", "--storage",
                        f"sqlite:///{tmp_path}/s.db"], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "set AMC_TOKEN" in r.stderr


# -- real processes ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.tmp, self.url = tmp, f"sqlite:///{tmp}/amc.db"
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server = self._start("serve", "--port", str(self.port))
        for _ in range(100):
            try:
                httpx.get(self.base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{args[0]}-{len(self.procs)}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "amc", *args, "--storage", self.url], cwd=self.tmp,
                             env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.procs.append(p)
        return p

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        return self._start("worker", "--threads", "1", "--heartbeat", "0.5", "--grace", "4", *args)

    def submit(self, body: dict[str, Any]) -> str:
        r = httpx.post(self.base + "/searches", json=body, timeout=10)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def wait(self, job_id: str, status: str = "done", timeout: float = 300) -> dict[str, Any]:
        end = time.time() + timeout
        while time.time() < end:
            job = httpx.get(f"{self.base}/searches/{job_id}", timeout=30).json()
            if job["status"] == status:
                return dict(job)
            assert job["status"] not in ("failed", "cancelled"), job
            time.sleep(0.5)
        raise AssertionError(f"search {job_id} not {status} in {timeout}s: {job}")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture()
def service(tmp_path):
    s = Service(tmp_path)
    yield s
    s.close()


def _body(tiny_data: Path, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"model": "resnet20", "data": str(tiny_data), "checkpoint": str(tiny_checkpoint(tmp_path)),
            "flops": 0.5, "proxy_size": 20, "calib_images": 10, "precision": "fp32", **extra}  # fmt: skip


def test_a_submitted_search_equals_amc_search(service, tiny_data, tmp_path):
    body = _body(tiny_data, tmp_path, method="random", episodes=4, seed=3)
    job = service.submit(body)
    service.worker("--once")
    done = service.wait(job)
    assert done["completed"] == 4 and done["progress"] == 1.0
    served = httpx.get(f"{service.base}/searches/{job}/policy", timeout=10).json()
    args = [f"--{k.replace('_', '-')}={v}" for k, v in body.items()]
    cli = subprocess.run([sys.executable, "-m", "amc", "search", *args, "--out", "cli.json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    mine = json.loads((tmp_path / "cli.json").read_text())
    for key in ("sparsity", "achieved", "budget", "model", "method", "dataset"):
        assert served[key] == mine[key], key
    assert served["metrics"]["heldout_proxy_acc"] == mine["metrics"]["heldout_proxy_acc"]
    page = httpx.get(f"{service.base}/ui/searches/{job}", timeout=10).text
    assert "<svg" in page and "sparsity per unit" in page


def test_a_killed_workers_search_is_finished_by_another(service, tiny_data, tmp_path):
    job = service.submit(_body(tiny_data, tmp_path, method="ddpg", episodes=14, warmup=4))
    first = service.worker()
    storage = optuna.storages.RDBStorage(service.url)
    before: list[tuple[int, float]] = []
    for _ in range(600):
        try:
            trials = optuna.load_study(study_name=f"svc-{job}", storage=storage).get_trials(deepcopy=False)
            before = [(t.number, t.value) for t in trials if t.state.is_finished()]
        except KeyError:
            pass
        if len(before) >= 5:
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 5 <= len(before) < 14
    service.worker()
    done = service.wait(job)
    study = optuna.load_study(study_name=f"svc-{job}", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 14 and done["claims"] == 2
    after = {t.number: t.value for t in complete}
    assert all(after[n] == v for n, v in before)  # every episode completed before the kill is kept


def test_two_workers_run_each_of_three_searches_exactly_once(service, tiny_data, tmp_path):
    jobs = [service.submit(_body(tiny_data, tmp_path, method="random", episodes=3, seed=s)) for s in range(3)]
    service.worker()
    service.worker()
    for job in jobs:
        done = service.wait(job)
        assert done["claims"] == 1 and done["completed"] == 3
    workers = {service.wait(j)["worker"] for j in jobs}
    assert len(workers) >= 1
