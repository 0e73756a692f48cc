"""The latency table's prediction error: per model, runtime and batch size, the table is measured
(timed), then ``--policies`` random policies are cut out of the network and measured end to end;
the error is |predicted - measured| / measured. Target (issue 13): median at most 10%.

    python bench/latency_table.py --models resnet56 mobilenetv2 --runtimes onnxruntime --batches 1 64
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

from amc.deploy.runtimes import get_runtime  # noqa: E402
from amc.deploy.table import LatencyCost, latency_table, measure_keep, random_keeps  # noqa: E402
from amc.models import build_model, get_spec  # noqa: E402
from amc.pruning.units import UnitGraph  # noqa: E402


def one(model: str, runtime_name: str, batch: int, policies: int, calibration: int) -> dict:
    spec = get_spec(model)
    net = build_model(model, 10).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = UnitGraph(net, spec.input_size, rule=spec.unit_rule, classifier=spec.classifier)
    runtime = get_runtime(runtime_name)
    t0 = time.time()
    table = latency_table(net, graph, runtime, batch, calibration=calibration)
    table_seconds = time.time() - t0
    cost = LatencyCost(graph, table)
    points = []
    for keep in random_keeps(graph, policies, 0.8, seed=2026):
        measured = measure_keep(net, graph, keep, runtime, batch, min_time=0.5)
        points.append({"predicted_ms": 1e3 * cost.cost(keep), "measured_ms": 1e3 * measured,
                       "macs_ratio": graph.cost(keep)[0] / graph.base_macs})  # fmt: skip
    err = np.array([abs(p["predicted_ms"] - p["measured_ms"]) / p["measured_ms"] for p in points])
    row = {
        "model": model, "runtime": runtime_name, "batch": batch, "threads": runtime.threads,
        "table_seconds": round(table_seconds, 1), "base_ms": 1e3 * table.base, "alpha": table.alpha,
        "c0_ms": 1e3 * table.c0, "median_error": float(np.median(err)), "p90_error": float(np.quantile(err, 0.9)),
        "max_error": float(err.max()), "policies": points,
    }  # fmt: skip
    print(f"{model} {runtime_name} b{batch}: table {table_seconds:.0f} s, unpruned {1e3 * table.base:.2f} ms, "
          f"error median {row['median_error']:.1%} p90 {row['p90_error']:.1%} max {row['max_error']:.1%}", flush=True)  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--policies", type=int, default=50)
    ap.add_argument("--calibration", type=int, default=6, help="random policies measured to fit alpha and c0")
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
            for batch in args.batches:
                rows.append(one(model, rt, batch, args.policies, args.calibration))
                write_result(name, {"machine": machine(), "rows": rows})  # after every row: nothing lost


if __name__ == "__main__":
    main()
