"""The pruning engine's baselines at one budget: uniform and global policies, with and without
BatchNorm recalibration and least-squares reconstruction, held-out (all 5,000) and test accuracy,
no fine-tuning.

    python bench/engine_baselines.py --model resnet56 --flops 0.5
    python bench/engine_baselines.py --quick
Writes bench/results/engine_baselines-MODEL[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.baselines import global_keep, uniform_keep  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--calib-images", type=int, default=2048)
    ap.add_argument("--criteria", nargs="+", default=["l1"])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.calib_images = "resnet20", 256
    rt = Runtime.create()
    ctx = build_context(
        SearchSettings(
            model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)), target=a.flops, allow_train=False
        ),
        rt,
    )
    data = ctx.base.data
    rows = [
        {
            "policy": "unpruned",
            "heldout_acc": evaluate(ctx.base.model, data.heldout, rt),
            "test_acc": evaluate(ctx.base.model, data.test, rt),
            "macs_ratio": 1.0,
        }
    ]
    policies = {"uniform": uniform_keep(ctx), "global": global_keep(ctx)}
    for criterion in a.criteria:
        for recal in (0, a.calib_images):
            for recon in (False, True):
                ev = NetworkBuilder(
                    ctx.base.model,
                    ctx.graph,
                    data,
                    rt,
                    BuildConfig(criterion=criterion, calib_images=recal, reconstruct=recon),
                )
                for name, keep in policies.items():
                    net = ev.build(keep)
                    rows.append(
                        {
                            "policy": name,
                            "criterion": criterion,
                            "bn_recalibration": recal,
                            "reconstruction": recon,
                            "macs_ratio": ctx.budget.ratio(keep),
                            "heldout_acc": evaluate(net, data.heldout, rt),
                            "test_acc": evaluate(net, data.test, rt),
                        }
                    )
                    r = rows[-1]
                    print(
                        f"{name:<8} {criterion:<6} recal {recal:>5} recon {recon!s:<5} MACs {r['macs_ratio']:.3f} "
                        f"held-out {r['heldout_acc']:.2%} test {r['test_acc']:.2%}",
                        flush=True,
                    )
    write_result(f"engine_baselines-{a.model}" + ("-quick" if a.quick else ""), {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
