"""Which proxy score picks the best of close policies: top-1 accuracy or cross-entropy (issue 12).

A search compares policies that differ by a point or less; the proxy scores each on a few hundred
held-out images. This draws policies of one budget that differ only in how the budget is shared
(random per-unit shapes around uniform), measures each without fine-tuning on the full held-out
and test splits (BN recalibrated on --truth-calib images: what bench/policy_quality.py reports),
and, for each proxy size, ranks them by the proxy's top-1 accuracy (``--reward acc``) and by its
negative cross-entropy (``--reward loss``). Reported per size and score: Spearman against the
full splits, and the regret of the policy the score picks (test points below the best).

    python bench/proxy_noise.py --model resnet56 --flops 0.5 --policies 16
    python bench/proxy_noise.py --quick
Writes bench/results/proxy_noise-MODEL[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.proxy import ProxyConfig, ProxyEvaluator  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.baselines import shaped_keep_for  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import evaluate  # noqa: E402


def close_policies(ctx, n: int, spread: float, seed: int) -> list[np.ndarray]:
    """``n`` distinct policies of the budget: per-unit shapes ``1 + spread * U(-1, 1)``."""
    rng = np.random.default_rng(seed)
    found: dict[tuple[int, ...], np.ndarray] = {}
    while len(found) < n:
        keep = shaped_keep_for(ctx.budget, 1 + spread * rng.uniform(-1, 1, len(ctx.graph.units)))
        found.setdefault(tuple(int(k) for k in keep), keep)
    return list(found.values())


def rows_for(name: str, scores: list[float], truth_held: list[float], truth_test: list[float]) -> dict:
    best = int(np.argmax(scores))
    return {
        "proxy": name,
        "spearman_vs_test": spearmanr(scores, truth_test).statistic,
        "spearman_vs_heldout": spearmanr(scores, truth_held).statistic,
        "picked_test_acc": truth_test[best],
        "regret_test_points": 100 * (max(truth_test) - truth_test[best]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--policies", type=int, default=16)
    ap.add_argument("--spread", type=float, default=0.4, help="how far a unit's share strays from uniform")
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--truth-calib", type=int, default=2000, help="BN recalibration images for the full splits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.policies, a.sizes, a.truth_calib = "resnet20", 4, [100], 100
    rt = Runtime.create("auto", "auto")
    settings = SearchSettings(
        model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)), target=a.flops, allow_train=False
    )
    ctx = build_context(settings, rt)
    t0 = time.time()
    pols = close_policies(ctx, a.policies, a.spread, a.seed)
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, BuildConfig(calib_images=a.truth_calib))
    truth_held, truth_test = [], []
    for i, keep in enumerate(pols):
        net = builder.build(keep)
        truth_held.append(evaluate(net, ctx.base.data.heldout, rt))
        truth_test.append(evaluate(net, ctx.base.data.test, rt))
        print(f"policy {i}: held-out {truth_held[-1]:.4f} test {truth_test[-1]:.4f}", flush=True)
    rows, scores = [], {}
    for size in a.sizes:
        ev = ProxyEvaluator(
            ctx.base.model, ctx.graph, ctx.base.data, rt, ProxyConfig(size=size, calib_images=size // 2)
        )
        results = [ev.evaluate(k) for k in pols]
        scores[size] = {"acc": [r.accuracy for r in results], "loss": [r.loss for r in results]}
        for metric, values in (("acc", scores[size]["acc"]), ("loss", [-v for v in scores[size]["loss"]])):
            rows.append({"size": size, "score": metric, **rows_for(f"{size}-{metric}", values, truth_held, truth_test)})
            r = rows[-1]
            print(f"proxy {size:>5} {metric:<4} Spearman test {r['spearman_vs_test']:.3f} held-out "
                  f"{r['spearman_vs_heldout']:.3f}  regret {r['regret_test_points']:.2f}", flush=True)  # fmt: skip
    write_result(
        f"proxy_noise-{a.model}" + ("-quick" if a.quick else ""),
        {
            "args": vars(a),
            "truth": {"heldout": truth_held, "test": truth_test},
            "scores": scores,
            "rows": rows,
            "seconds": round(time.time() - t0, 1),
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()
