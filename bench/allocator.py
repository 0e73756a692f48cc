"""What glibc's allocator settings cost the search's hot path (amc.runtime.keep_freed_memory).

Each model's proxy scores the same budget-meeting random policies in two fresh processes: one
with glibc's defaults (``AMC_MALLOC=system``: large activations are mmap'ed and unmapped on every
batch, so each batch faults its memory in again) and one as amc runs (freed blocks kept for
reuse). Reported per process: seconds per policy, user and system CPU seconds, peak RSS. The two
alternate --repeats times; the medians are kept.

    python bench/allocator.py --models resnet56 mobilenetv2 --policies 12
    python bench/allocator.py --quick
Writes bench/results/allocator[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402


def child(model: str, policies: int, quick: bool) -> dict:
    """Score ``policies`` random policies of ``model`` with the default proxy; time and CPU use."""
    from proxy_fidelity import random_policies

    from amc.proxy import ProxyConfig
    from amc.runtime import Runtime
    from amc.search.context import SearchSettings, build_context

    proxy = ProxyConfig(size=100, calib_images=50) if quick else ProxyConfig()
    settings = SearchSettings(model=model, data=data_spec(), checkpoint=str(base_checkpoint(model)), target=0.5,
                              proxy=proxy, allow_train=False)  # fmt: skip
    ctx = build_context(settings, Runtime.create("auto", "fp32"))
    keeps = random_policies(ctx, policies + 1, seed=0)
    ctx.proxy.evaluate(keeps[-1])  # warm-up, not timed
    t0, c0 = time.perf_counter(), os.times()
    for keep in keeps[:-1]:
        ctx.proxy.evaluate(keep)
    t1, c1 = time.perf_counter(), os.times()
    return {"seconds_per_policy": (t1 - t0) / policies, "user_seconds": c1.user - c0.user,
            "system_seconds": c1.system - c0.system,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # fmt: skip


def run_child(model: str, policies: int, allocator: str, quick: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AMC_MALLOC"}
    if allocator == "system":
        env["AMC_MALLOC"] = "system"
    cmd = [sys.executable, __file__, "--child", model, "--policies", str(policies), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2"])
    ap.add_argument("--policies", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.policies, a.quick)))
        return
    if a.quick:
        a.models, a.policies, a.repeats = ["resnet20"], 2, 1
    rows = []
    for model in a.models:
        runs: dict[str, list[dict]] = {"system": [], "amc": []}
        for _ in range(a.repeats):
            for allocator in runs:
                runs[allocator].append(run_child(model, a.policies, allocator, a.quick))
        for allocator, got in runs.items():
            row = {"model": model, "allocator": allocator, "policies": a.policies, "repeats": len(got),
                   **{k: round(statistics.median(r[k] for r in got), 3) for k in got[0]}}  # fmt: skip
            rows.append(row)
            r = row
            print(f"{model:<12} {allocator:<7} {r['seconds_per_policy']:.3f} s/policy  user {r['user_seconds']:.1f} s"
                  f"  system {r['system_seconds']:.1f} s  peak {r['peak_rss_gib']:.2f} GiB", flush=True)  # fmt: skip
    write_result("allocator" + ("-quick" if a.quick else ""), {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
