"""Latency budgets kept on the real runtime: a search under ``--latency T --runtime R --batch-size
B`` (the per-layer table as its cost model), the policy cut out of the zoo base (BN recalibrated,
no fine-tuning), its latency ratio to the unpruned network measured on R at batch B (the two
timed back to back, median of 7 rounds),
and its held-out / test accuracy; beside it the MACs-budget policy of the same searcher whose
measured latency is closest to it from below, for the accuracy comparison the issue asks.

    python bench/latency_budget.py --model resnet56 --runtime onnxruntime --batch-size 1 --latency 0.6
    python bench/latency_budget.py --quick       # CI: resnet20, --latency 0.9, --flops 0.5

Run on an idle machine. Writes bench/results/latency_budget-MODEL-RUNTIME-bB.json after each row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_checkpoint, data_spec, machine, write_result  # noqa: E402

from amc.apply import policy_keep  # noqa: E402
from amc.deploy.runtimes import get_runtime, median_seconds  # noqa: E402
from amc.deploy.table import measure_ratio  # noqa: E402
from amc.jobs import run_search_request  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.requests import SearchRequest  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import evaluate  # noqa: E402


def measure(ctx, policy, runtime, batch: int, base_run) -> dict:
    keep = policy_keep(policy, ctx.graph)
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, BuildConfig(calib_images=2000))
    net = builder.build(keep)
    return {
        "latency_ratio": measure_ratio(base_run, runtime.runnable(net, ctx.graph.input_size, batch), rounds=7),
        "predicted_ratio": policy.budget.get("used", 0) * policy.budget.get("target", 0)
        if policy.budget.get("kind") == "latency" else None,
        "macs_ratio": policy.achieved["macs_ratio"],
        "heldout_acc": evaluate(net, ctx.base.data.split("heldout"), ctx.base.runtime),
        "test_acc": evaluate(net, ctx.base.data.split("test"), ctx.base.runtime),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--latency", type=float, default=0.6)
    ap.add_argument("--method", default="uniform")
    ap.add_argument("--episodes", type=int, default=60)
    ap.add_argument("--flops", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7])
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, --latency 0.9 and --flops 0.5, 8 episodes")
    args = ap.parse_args()
    if args.quick:
        args.model, args.latency, args.flops, args.episodes = "resnet20", 0.9, [0.5], 8
    rt = Runtime.create("cpu", "auto")
    runtime = get_runtime(args.runtime)
    settings = SearchSettings(model=args.model, data=data_spec(), checkpoint=str(base_checkpoint(args.model)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = build_context(settings, rt)
    base_run = runtime.runnable(ctx.base.model, ctx.graph.input_size, args.batch_size)
    base_ms = 1e3 * median_seconds(base_run, min_time=1.0)
    name = f"latency_budget-{args.model}-{args.runtime}-b{args.batch_size}" + ("-quick" if args.quick else "")
    rows = []
    budgets = [("latency", args.latency)] + [("flops", f) for f in args.flops]
    with tempfile.TemporaryDirectory() as tmp:
        for kind, target in budgets:
            req = SearchRequest(model=args.model, data=data_spec(), checkpoint=settings.checkpoint, method=args.method,
                                episodes=args.episodes, warmup=min(args.episodes // 4, 100), proxy_size=500,
                                calib_images=250, runtime=args.runtime, batch_size=args.batch_size,
                                storage=f"{tmp}/s.journal", out=f"{tmp}/{kind}{target}.json",
                                **{kind: target})  # fmt: skip
            policy = run_search_request(req, progress=False)
            row = {"budget": kind, "target": target, **measure(ctx, policy, runtime, args.batch_size, base_run)}
            rows.append(row)
            print(f"{kind} {target}: measured latency ratio {row['latency_ratio']:.3f} (MACs {row['macs_ratio']:.3f}),"
                  f" held-out {row['heldout_acc']:.2%}, test {row['test_acc']:.2%}", flush=True)  # fmt: skip
            write_result(name, {"machine": machine(), "method": args.method, "base_ms": base_ms, "rows": rows})


if __name__ == "__main__":
    main()
