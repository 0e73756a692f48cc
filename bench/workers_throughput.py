"""Throughput of N amc processes on one machine: the same searches run by one process with all
cores, or by N processes with cores/N threads each (what `amc worker` chooses by default).

    python bench/workers_throughput.py --model resnet20 --episodes 30
    python bench/workers_throughput.py --quick
Writes bench/results/workers_throughput[-quick].json: wall time and episodes per minute per setup.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402


def _search(model: str, episodes: int, seed: int, threads: int, folder: Path, proxy: list[str]) -> list[str]:
    return [sys.executable, "-m", "amc", "search", "--model", model, "--data", data_spec(), "--checkpoint",
            str(base_checkpoint(model)), "--method", "random", "--episodes", str(episodes), "--seed", str(seed),
            "--threads", str(threads), "--storage", str(folder / f"s{seed}.journal"), "--out",
            str(folder / f"p{seed}.json"), *proxy]  # fmt: skip


def run_setup(workers: int, searches: int, a: argparse.Namespace, proxy: list[str]) -> dict[str, float]:
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        queue = list(range(searches))
        start = time.time()
        running: list[subprocess.Popen[bytes]] = []
        while queue or running:
            while queue and len(running) < workers:
                seed = queue.pop(0)
                cmd = _search(a.model, a.episodes, seed, threads, folder, proxy)
                running.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.2)
            for p in [p for p in running if p.poll() is not None]:
                if p.returncode != 0:
                    sys.exit(f"a search failed with exit status {p.returncode}")
                running.remove(p)
        wall = time.time() - start
    total = searches * a.episodes
    return {"workers": workers, "threads_each": threads, "searches": searches, "episodes": total,
            "wall_seconds": round(wall, 1), "episodes_per_minute": round(total / wall * 60, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--searches", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    proxy = ["--proxy-size", "500", "--calib-images", "250"]
    if a.quick:
        a.episodes, a.searches, a.workers, proxy = 2, 2, [1, 2], ["--proxy-size", "50", "--calib-images", "20"]
    rows = [run_setup(w, a.searches, a, proxy) for w in a.workers]
    for r in rows:
        print(f"{r['workers']} worker(s) x {r['threads_each']} thread(s): {r['episodes']} episodes in "
              f"{r['wall_seconds']} s = {r['episodes_per_minute']} episodes/min", flush=True)  # fmt: skip
    write_result("workers_throughput" + ("-quick" if a.quick else ""), {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
