"""The latency table's prediction error: per model, runtime and batch size, the table is measured
(timed), then ``--policies`` random policies are cut out of the network and measured end to end;
each policy's latency ratio to the unpruned network is measured (the two timed back to back,
median of 5 rounds) and compared with the table's predicted ratio: error = |predicted - measured|
/ measured. Target (issue 13): median at most 10%.

    python bench/latency_table.py --models resnet56 mobilenetv2 --runtimes onnxruntime --batches 1 64
    python bench/latency_table.py --models mobilenetv2 --batches 1 --round-to 4   # counts on a multiple
    python bench/latency_table.py --quick        # resnet20, onnxruntime, batch 1, 5 policies

Run it on an idle machine: a second process on the cores makes every measurement noise.
Architectures only (random weights): latency does not depend on the values. The tables are not
cached here (each run measures afresh); writes bench/results/latency_table[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_result  # noqa: E402

from amc.deploy.runtimes import OnnxRuntime, get_runtime  # noqa: E402
from amc.deploy.table import (  # noqa: E402
    LatencyCost,
    latency_table,
    measure_ratio,
    pruned_copy,
    random_keeps,
)
from amc.models import build_model, get_spec  # noqa: E402
from amc.pruning.units import UnitGraph  # noqa: E402


def one_model(
    model: str, runtime_name: str, batches: list[int], policies: int, calibration: int, round_to: int = 1
) -> list[dict]:
    spec = get_spec(model)
    net = build_model(model, 10).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = UnitGraph(net, spec.input_size, rule=spec.unit_rule, classifier=spec.classifier)
    runtime = get_runtime(runtime_name)
    tables, table_seconds = {}, {}
    for batch in batches:
        t0 = time.time()
        tables[batch] = latency_table(net, graph, runtime, batch, calibration=calibration, round_to=round_to)
        table_seconds[batch] = time.time() - t0
    base_runs = {b: runtime.runnable(net, graph.input_size, b) for b in batches}
    points: dict[int, list[dict]] = {b: [] for b in batches}
    for keep in random_keeps(graph, policies, 0.8, seed=2026, round_to=round_to):
        pruned = pruned_copy(net, graph, keep)
        blob = runtime.to_onnx(pruned, graph.input_size) if isinstance(runtime, OnnxRuntime) else None
        for b in batches:
            run = (runtime.runnable_onnx(blob, (b, *graph.input_size)) if blob is not None
                   else runtime.runnable(pruned, graph.input_size, b))  # fmt: skip
            cost = LatencyCost(graph, tables[b])
            points[b].append({"predicted_ratio": cost.cost(keep) / cost.base,
                              "measured_ratio": measure_ratio(base_runs[b], run),
                              "macs_ratio": graph.cost(keep)[0] / graph.base_macs})  # fmt: skip
    rows = []
    for b in batches:
        err = np.array([abs(p["predicted_ratio"] - p["measured_ratio"]) / p["measured_ratio"] for p in points[b]])
        tab = tables[b]
        rows.append({
            "model": model, "runtime": runtime_name, "batch": b, "threads": runtime.threads, "round_to": round_to,
            "table_seconds": round(table_seconds[b], 1), "base_ms": 1e3 * tab.measured_base, "c0_ms": 1e3 * tab.c0,
            "median_error": float(np.median(err)), "p90_error": float(np.quantile(err, 0.9)),
            "max_error": float(err.max()), "policies": points[b],
        })  # fmt: skip
        errors = f"median {np.median(err):.1%} p90 {np.quantile(err, 0.9):.1%} max {err.max():.1%}"
        print(f"{model} {runtime_name} b{b}: table {table_seconds[b]:.0f} s, unpruned {1e3 * tab.measured_base:.2f} ms,"
              f" ratio error {errors}", flush=True)  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--policies", type=int, default=50)
    ap.add_argument("--calibration", type=int, default=6, help="random policies measured to fit c0 (and 2 uniform)")
    ap.add_argument("--round-to", type=int, default=1, help="kept counts on this multiple (table and policies)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    if args.quick:
        args.models, args.runtimes, args.batches, args.policies, args.calibration = (
            ["resnet20"],
            ["onnxruntime"],
            [1],
            5,
            3,
        )
    rows = []
    name = "latency_table" + ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    for model in args.models:
        for rt in args.runtimes:
            rows += one_model(model, rt, args.batches, args.policies, args.calibration, args.round_to)
            write_result(name, {"machine": machine(), "rows": rows})  # after every model: nothing lost


if __name__ == "__main__":
    main()
