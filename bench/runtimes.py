"""Unpruned networks on each inference runtime: median milliseconds per forward pass of one
batch (after warm-up), to show what a runtime costs on this machine before any pruning (e.g.
torch-bf16 on a CPU without AMX / AVX-512-bf16 is emulated and several times slower than fp32).

    python bench/runtimes.py --models resnet56 mobilenetv2 --batch-size 64
    python bench/runtimes.py --quick      # CI: resnet20, batch 1, torch-fp32 and onnxruntime, short timings
Run it on an idle machine. Writes bench/results/runtimes-bB[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from amc.deploy.runtimes import get_runtime, median_seconds, runtime_names  # noqa: E402
from amc.models import build_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2"])
    ap.add_argument("--runtimes", nargs="+", default=["torch-fp32", "torch-bf16", "onnxruntime"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per network and runtime")
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, batch 1, torch-fp32 and onnxruntime")
    a = ap.parse_args()
    if a.quick:
        a.models, a.runtimes, a.batch_size, a.seconds = ["resnet20"], ["torch-fp32", "onnxruntime"], 1, 0.1
    unknown = set(a.runtimes) - set(runtime_names())
    if unknown:
        sys.exit(f"error: unknown runtime(s) {sorted(unknown)}: use {runtime_names()}")
    rows = []
    for m in a.models:
        net = build_model(m).eval()  # architecture only: latency does not depend on the weights
        for rt in a.runtimes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = get_runtime(rt).runnable(net, (3, 32, 32), a.batch_size)
            ms = 1e3 * median_seconds(run, min_time=a.seconds)
            rows.append({"model": m, "runtime": rt, "batch": a.batch_size, "ms": ms})
            print(f"{m} {rt} b{a.batch_size}: {ms:.1f} ms", flush=True)
    write_result(f"runtimes-b{a.batch_size}" + ("-quick" if a.quick else ""), {"rows": rows})


if __name__ == "__main__":
    main()
