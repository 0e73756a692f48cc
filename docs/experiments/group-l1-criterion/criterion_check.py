"""Each criterion scored with three cheap count vectors (uniform, Torch-Pruning's global and local
L1), per model. From the repository root, with AMC_DATA and AMC_CHECKPOINTS set:

    python docs/experiments/group-l1-criterion/criterion_check.py            # session 19: the search's proxy
    python docs/experiments/group-l1-criterion/criterion_check.py --images 4000 --calib 1000 --skip 500
                                               # session 27: the re-scoring evaluator's images and calibration
"""

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from _common import base_checkpoint, data_spec  # noqa: E402

from amc.proxy import ProxyConfig, ProxyEvaluator  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.baselines import uniform_keep  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.search.tp_baselines import tp_keep  # noqa: E402

CASES = [("vgg19", 0.5), ("resnet18", 0.5), ("resnet56", 0.5), ("mobilenetv2", 0.5), ("mobilenetv2", 0.3),
         ("resnet56", 0.3), ("resnet20", 0.5)]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=500, help="held-out images scored")
    p.add_argument("--calib", type=int, default=250, help="BatchNorm recalibration images")
    p.add_argument("--skip", type=int, default=0, help="held-out images passed over (the proxy's)")
    p.add_argument("--cases", nargs="*", default=None, help="MODEL:FLOPS, e.g. vgg19:0.5")
    args = p.parse_args()
    cases = [(c.split(":")[0], float(c.split(":")[1])) for c in args.cases] if args.cases else CASES
    warnings.simplefilter("ignore")
    rt = Runtime.create("auto", "auto")
    for model, target in cases:
        t0 = time.time()
        settings = SearchSettings(model=model, data=data_spec(), checkpoint=str(base_checkpoint(model)),
                                  target=target, allow_train=False, proxy=ProxyConfig(criterion="l1"))  # fmt: skip
        ctx = build_context(settings, rt)
        keeps = {"uniform": uniform_keep(ctx), "tp-global": tp_keep(ctx, True), "tp-local": tp_keep(ctx, False)}
        out, loss = {}, {}
        for c in ("l1", "group-l1"):
            cfg = replace(ctx.settings.proxy, criterion=c, size=args.images, calib_images=args.calib)
            ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, rt, cfg, skip=args.skip)
            res = {k: ev.evaluate(v) for k, v in keeps.items()}
            out[c] = {k: round(r.accuracy, 4) for k, r in res.items()}
            loss[c] = {k: round(r.loss, 4) for k, r in res.items()}
        means = {c: round(float(np.mean(list(d.values()))), 4) for c, d in out.items()}
        print(model, target, out, means, "loss", loss, f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
