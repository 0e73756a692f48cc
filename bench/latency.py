"""Benchmark 3 (real speed-up), latency only: the unpruned base against pruned networks at one
MACs budget, measured with torch.utils.benchmark at batch 1 and 64, in bf16 and fp32. Includes
uniform policies with kept channels rounded to multiples of 4 and 8 (--round-to), to show how
much of the MACs reduction a CPU turns into speed.

    python bench/latency.py --model resnet56 --policies bench/results/policies/resnet56-ddpg-bf16.json
    python bench/latency.py --quick          # CI: resnet20, short timings
Run it on an otherwise idle machine. Writes bench/results/latency-MODEL[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.apply import policy_keep  # noqa: E402
from amc.errors import AmcError  # noqa: E402
from amc.latency import measure_latency  # noqa: E402
from amc.policy import load_policy  # noqa: E402
from amc.pruning.budget import Budget  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.baselines import uniform_keep_for  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--policies", nargs="*", default=[])
    ap.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, 0.1 s per timing")
    ap.add_argument("--tag", default="", help="suffix of the result JSON's name")
    a = ap.parse_args()
    if a.quick:
        a.model, a.seconds = "resnet20", 0.1
    policies = {Path(path).stem: load_policy(path) for path in a.policies}
    residual = {p.residual for p in policies.values()}  # the unit graph the policies were searched on
    if len(residual) > 1:
        sys.exit("--policies mix residual and non-residual policies: measure each kind in its own run")
    rows = []
    for precision in a.precisions:
        rt = Runtime.create("auto", precision)
        ctx = build_context(
            SearchSettings(
                model=a.model,
                data=data_spec(),
                checkpoint=str(base_checkpoint(a.model)),
                target=a.flops,
                residual=residual == {True},
                allow_train=False,
            ),
            rt,
        )
        ev = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, BuildConfig(calib_images=0))
        nets = {"unpruned": (ctx.base.model, 1.0)}
        for r in (1, 4, 8):
            try:
                b = Budget(ctx.graph, a.flops, round_to=r)
            except AmcError as exc:  # e.g. 16-channel units cannot reach 50% MACs in steps of 8
                print(f"round-to {r}: {exc}")
                continue
            keep = uniform_keep_for(b)
            nets[f"uniform round-to {r}"] = (ev.build(keep), b.ratio(keep))
        for name, policy in policies.items():
            keep = policy_keep(policy, ctx.graph)
            nets[name] = (ev.build(keep), ctx.budget.ratio(keep))
        base = {}
        for name, (net, macs) in nets.items():
            row = {"precision": rt.precision, "network": name, "macs_ratio": macs}
            for bs in (1, 64):
                row[f"latency_b{bs}_ms"] = 1e3 * measure_latency(net, rt, bs, ctx.graph.input_size, a.seconds)
                base.setdefault(bs, row[f"latency_b{bs}_ms"])
                row[f"speedup_b{bs}"] = base[bs] / row[f"latency_b{bs}_ms"]
            rows.append(row)
            print(
                f"{rt.precision:<5} {name:<28} MACs {macs:.3f}  b1 {row['latency_b1_ms']:.2f} ms "
                f"(x{row['speedup_b1']:.2f})  b64 {row['latency_b64_ms']:.1f} ms (x{row['speedup_b64']:.2f})",
                flush=True,
            )
    name = f"latency-{a.model}" + ("-quick" if a.quick else "") + (f"-{a.tag}" if a.tag else "")
    write_result(name, {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
