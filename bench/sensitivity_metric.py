"""Which sensitivity scan makes the best layer-wise policy: its proxy size, and what a cut costs.

The sensitivity policy (amc.search.baselines) prunes one unit at a time at 0.25 / 0.5 / 0.75,
scores each on the search's held-out proxy, then spends the budget where the score drops least per
MAC saved. A quarter of one unit's channels moves the proxy's accuracy by a few images, so on a
small proxy its curves are mostly noise; the proxy's mean cross-entropy moves with every image.
For each proxy size in --sizes (calibrated on half as many training images), one scan records
both; for each metric and MACs target the policy is built and measured as bench/policy_quality.py
measures it (BatchNorm recalibrated on 2,000 training images, the whole held-out and test splits,
no fine-tuning).

    python bench/sensitivity_metric.py --model resnet56 --flops 0.3 0.5 0.7 --sizes 500 1000
    python bench/sensitivity_metric.py --model resnet56 --flops 0.5 --sizes 500 1000 2000 --metrics loss \
        --seeds 0 1 2 --scan-images proxy train --tag seeds    # how much the policy moves with the scan's
                                    # image draw (a search's seed), on held-out and on training images
    python bench/sensitivity_metric.py --quick    # CI: resnet20, one small proxy
Writes bench/results/sensitivity_metric-MODEL[-TAG][-quick].json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.macs import count_macs  # noqa: E402
from amc.proxy import ProxyConfig  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search import baselines  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import evaluate  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000], help="proxy images of each scan")
    ap.add_argument("--metrics", nargs="+", default=["accuracy", "loss"], choices=["accuracy", "loss"])
    ap.add_argument("--calib-images", type=int, default=2000, help="BN recalibration images per measured network")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="the scans' image draws (a search's --seed)")
    ap.add_argument("--tag", default="", help="suffix of the result JSON's name")
    ap.add_argument(
        "--scan-images",
        nargs="+",
        default=["proxy"],
        choices=["proxy", "train"],
        help="score the cuts on the proxy's held-out images, or on as many training images (none a calibration one)",
    )
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.flops, a.sizes, a.calib_images = "resnet20", [0.5], [200], 200
    return a


def measured_rows(ctx, rt: Runtime, a: argparse.Namespace, images: baselines.ScanImages, scan_seconds: float) -> list:
    """One row per metric: the sensitivity policy that metric spends the budget by, measured."""
    builder = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, BuildConfig(calib_images=a.calib_images))
    rows = []
    for metric in a.metrics:
        keep = baselines.sensitivity_keep(ctx, progress=False, metric=metric, images=images)
        net = builder.build(keep)
        row = {
            "model": a.model,
            "proxy_size": images.size,
            "seed": images.draw,
            "scan_images": images.source,
            "metric": metric,
            "target": ctx.settings.target,
            "macs_ratio": count_macs(net, ctx.graph.input_size) / ctx.graph.base_macs,
            "heldout_acc": evaluate(net, ctx.base.data.heldout, rt),
            "test_acc": evaluate(net, ctx.base.data.test, rt),
            "scan_seconds": round(scan_seconds, 1),
            "keep": [int(k) for k in keep],
        }
        rows.append(row)
        print(
            f"{a.model} {images.source:<5} {images.size:>5} seed {images.draw} {metric:<8} MACs {row['target']:.2f}"
            f" ({row['macs_ratio']:.3f}) held-out {row['heldout_acc']:.2%} test {row['test_acc']:.2%}",
            flush=True,
        )
    return rows


def main() -> None:
    a = parse_args()
    rt = Runtime.create("auto", "auto")
    rows: list[dict] = []
    t0 = time.time()
    name = f"sensitivity_metric-{a.model}" + (f"-{a.tag}" if a.tag else "") + ("-quick" if a.quick else "")
    for size, seed, source in itertools.product(a.sizes, a.seeds, a.scan_images):
        proxy = ProxyConfig(size=size, calib_images=size // 2, seed=seed)
        images = baselines.ScanImages(source, size=size, draw=seed)
        for target in a.flops:
            settings = SearchSettings(model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)),
                                      target=target, proxy=proxy, seed=seed, allow_train=False)  # fmt: skip
            ctx = build_context(settings, rt)
            started = time.time()
            baselines.sensitivity_scan(ctx, progress=sys.stderr.isatty(), images=images)  # cached after the 1st target
            rows += measured_rows(ctx, rt, a, images, time.time() - started)
            write_result(name, {"args": vars(a), "precision": rt.precision, "rows": rows,
                                "seconds": round(time.time() - t0, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
