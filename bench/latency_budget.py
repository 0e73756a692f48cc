"""Latency budgets kept on the real runtime (issue 13's targets): a search under ``--latency T
--runtime R --batch-size B`` (the per-layer table as its cost model, counts rounded as
``--round-to`` says), the policy cut out of the zoo base (BN recalibrated, no fine-tuning), its
latency ratio to the unpruned network measured on R at batch B (the two timed back to back,
median of 7 rounds), and its held-out / test accuracy; beside it MACs-budget policies of the same
searcher and rounding at ``--flops``, measured the same way. Verdicts: the latency policy's
measured ratio is at most T (5% tolerance), and its accuracy is at least that of the best
MACs-budget policy whose measured latency is as low. A latency target the search refuses as
unreachable is recorded with the refusal, and the smallest reachable one (up to the next 0.05)
is run instead.

    python bench/latency_budget.py --model resnet56 --runtime onnxruntime --batch-size 1 --latency 0.6 \
        --method ddpg --episodes 100 --round-to auto
    python bench/latency_budget.py --quick       # CI: resnet20, --latency 0.9, --flops 0.5

Run on an idle machine. Writes bench/results/latency_budget-MODEL-RUNTIME-bB[-TAG].json after
each row; searches are kept in ``--runs`` (a stopped run resumes: finished rows are not redone).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, base_checkpoint, data_spec, machine, write_result  # noqa: E402

from amc.apply import policy_keep  # noqa: E402
from amc.deploy.runtimes import get_runtime, median_seconds  # noqa: E402
from amc.deploy.table import measure_ratio  # noqa: E402
from amc.deploy.verify import ROUNDS  # noqa: E402
from amc.errors import AmcError  # noqa: E402
from amc.jobs import run_search_request  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.requests import SearchRequest  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import evaluate  # noqa: E402

TOLERANCE = 1.05  # the 5% on the latency target


def measure(ctx, policy, runtime, batch: int, base_run, calib_images: int = 2000) -> dict:
    keep = policy_keep(policy, ctx.graph)
    config = BuildConfig(calib_images=calib_images)
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, config)
    net = builder.build(keep)
    return {
        "latency_ratio": measure_ratio(base_run, runtime.runnable(net, ctx.graph.input_size, batch), rounds=ROUNDS),
        "predicted_ratio": policy.budget.get("used", 0) * policy.budget.get("target", 0)
        if policy.budget.get("kind") == "latency" else None,
        "round_to": policy.budget.get("round_to"),
        "macs_ratio": policy.achieved["macs_ratio"],
        "params_ratio": policy.achieved.get("params_ratio"),
        "heldout_proxy_acc": policy.metrics.get("heldout_proxy_acc"),
        "heldout_acc": evaluate(net, ctx.base.data.split("heldout"), ctx.base.runtime),
        "test_acc": evaluate(net, ctx.base.data.split("test"), ctx.base.runtime),
    }  # fmt: skip


def verdict(rows: list[dict], target: float) -> dict:
    """The issue's two checks on the latency row against the MACs rows."""
    lat = next((r for r in rows if r["budget"] == "latency"), None)
    if lat is None:
        return {}
    faster = [r for r in rows if r["budget"] == "flops" and r["latency_ratio"] <= lat["latency_ratio"]]
    out = {"latency_kept": lat["latency_ratio"] <= target * TOLERANCE}
    for split in ("heldout_acc", "test_acc"):
        best = max((r[split] for r in faster), default=None)
        out[f"best_flops_{split}_as_fast"] = best
        out[f"{split}_at_least_best_flops"] = best is None or lat[split] >= best
    return out


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--latency", type=float, default=0.6)
    ap.add_argument("--method", default="uniform")
    ap.add_argument("--episodes", type=int, default=60)
    ap.add_argument("--round-to", default="1", help="a multiple or auto (as amc search)")
    ap.add_argument("--residual", action="store_true", help="also prune residual groups (as amc search)")
    ap.add_argument("--flops", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7])
    ap.add_argument("--calib-images", type=int, default=2000, help="BN recalibration images per measured network")
    ap.add_argument("--tag", default="", help="suffix of the result's name")
    ap.add_argument(
        "--flops-rows-from",
        default="",
        metavar="TAG",
        help="reuse the MACs-budget rows of an earlier result (same model, runtime and batch) with this tag",
    )
    ap.add_argument("--runs", type=Path, default=Path("runs/latency_budget"), help="search storage (resumable)")
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, --latency 0.9 and --flops 0.5, 8 episodes")
    args = ap.parse_args()
    if args.quick:
        args.model, args.latency, args.flops, args.episodes, args.calib_images = "resnet20", 0.9, [0.5], 8, 100
    return args


def main() -> None:
    args = parse()
    rt = Runtime.create("cpu", "auto")
    runtime = get_runtime(args.runtime)
    settings = SearchSettings(model=args.model, data=data_spec(), checkpoint=str(base_checkpoint(args.model)),
                              residual=args.residual)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = build_context(settings, rt)
    base_run = runtime.runnable(ctx.base.model, ctx.graph.input_size, args.batch_size)
    base_ms = 1e3 * median_seconds(base_run, min_time=1.0)
    name = f"latency_budget-{args.model}-{args.runtime}-b{args.batch_size}" + (f"-{args.tag}" if args.tag else "")
    name += "-quick" if args.quick else ""
    old = RESULTS / f"{name}.json"
    rows = json.loads(old.read_text())["rows"] if old.is_file() and not args.quick else []
    refused: list[dict] = json.loads(old.read_text()).get("refused", []) if rows else []
    if not rows and args.flops_rows_from:
        rows = reused_flops_rows(name.replace(f"-{args.tag}", f"-{args.flops_rows_from}", 1) if args.tag else "")
    done = {(r["budget"], r["target"]) for r in rows} | {("latency", r["target"]) for r in refused if rows}
    args.runs.mkdir(parents=True, exist_ok=True)
    for kind, target in [("latency", args.latency)] + [("flops", f) for f in args.flops]:
        if (kind, target) in done:
            continue
        req = SearchRequest(model=args.model, data=data_spec(), checkpoint=settings.checkpoint, method=args.method,
                            episodes=args.episodes, warmup=min(args.episodes // 4, 100), proxy_size=500,
                            calib_images=250, runtime=args.runtime, batch_size=args.batch_size,
                            round_to=args.round_to, residual=args.residual, resume=True,
                            storage=str(args.runs / f"{name}.journal"),
                            out=str(args.runs / f"{name}-{kind}{target}.json"),
                            **{kind: target})  # fmt: skip
        try:
            policy = run_search_request(req, progress=False)
        except AmcError as e:  # an unreachable latency target: say so, then run the smallest reachable one
            found = re.search(r"smallest reachable is ([0-9.]+)", str(e))
            if kind != "latency" or found is None:
                raise
            refused.append({"target": target, "refused": str(e)})
            target = math.ceil(float(found.group(1)) * 20) / 20  # up to the next 0.05
            print(f"refused: {e}; running --latency {target:g}", flush=True)
            policy = run_search_request(req.model_copy(update={"latency": target}), progress=False)
        measured = measure(ctx, policy, runtime, args.batch_size, base_run, args.calib_images)
        row = {"budget": kind, "target": target, **measured}
        rows.append(row)
        print(f"{kind} {target}: measured latency ratio {row['latency_ratio']:.3f} (MACs {row['macs_ratio']:.3f},"
              f" round to {row['round_to']}), held-out {row['heldout_acc']:.2%}, test {row['test_acc']:.2%}",
              flush=True)  # fmt: skip
        payload = {"machine": machine(), "method": args.method, "episodes": args.episodes, "round_to": args.round_to,
                   "residual": args.residual, "base_ms": base_ms, "rows": rows, "refused": refused,
                   "flops_rows_from": args.flops_rows_from or None,
                   "verdict": verdict(rows, lat_target(rows, args.latency))}  # fmt: skip
        write_result(name, payload)
    print(json.dumps(verdict(rows, lat_target(rows, args.latency)), indent=1))


def reused_flops_rows(name: str) -> list[dict]:
    """The MACs-budget rows of the earlier result ``name``, each marked with where it came from."""
    path = RESULTS / f"{name}.json"
    if not name or not path.is_file():
        sys.exit(
            f"error: --flops-rows-from needs --tag and an earlier result {path.name}; run it first or drop the option"
        )
    old = json.loads(path.read_text())
    return [
        {**r, "from": f"{name} ({old.get('commit')}, {old.get('when')})"} for r in old["rows"] if r["budget"] == "flops"
    ]


def lat_target(rows: list[dict], asked: float) -> float:
    """The latency target run: the one asked, or the smallest reachable one it was raised to."""
    return next((r["target"] for r in rows if r["budget"] == "latency"), asked)


if __name__ == "__main__":
    main()
