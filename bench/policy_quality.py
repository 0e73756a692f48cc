"""Benchmarks 2 and 3: policy quality and real speed-up at one MACs budget.

For one base model, side by side at the same MACs target:
  * amc's uniform, global and sensitivity policies (computed here),
  * the learned policies a search benchmark left in bench/results/policies/ (ddpg, optuna,
    random), and
  * Torch-Pruning's own pruner (``MetaPruner``) with global and local L1 magnitude importance and
    with its Taylor importance, restricted to the same units, its pruning ratio bisected to the
    same MACs target.
Every network gets the same BN recalibration (2,000 training images) and the same short cosine
fine-tuning. Reported: MACs and parameter ratios, held-out and test accuracy before and after
fine-tuning, and measured latency (batch 1 and 64) against the unpruned base.

    python bench/policy_quality.py --model resnet56 --finetune-epochs 0.5
    python bench/policy_quality.py --quick
Writes bench/results/policy_quality-MODEL[-quick].json.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, base_checkpoint, data_spec, write_result  # noqa: E402

from amc.apply import policy_keep  # noqa: E402
from amc.compare import measure_network  # noqa: E402
from amc.data import batches  # noqa: E402
from amc.errors import AmcError  # noqa: E402
from amc.latency import measure_latency  # noqa: E402
from amc.macs import count_macs  # noqa: E402
from amc.policy import Policy, load_policy  # noqa: E402
from amc.proxy import ProxyConfig  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.pruning.recalibrate import recalibrate_bn  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search import baselines  # noqa: E402
from amc.search.base import get_searcher, searcher_names  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.search.criterion_choice import AUTO, CANDIDATES  # noqa: E402
from amc.training import evaluate  # noqa: E402

TP_METHODS = ("tp-global-l1", "tp-local-l1", "tp-global-taylor", "tp-local-taylor")


def torch_pruning_net(ctx, importance: str, global_pruning: bool, target: float) -> nn.Module:
    """Torch-Pruning's MetaPruner on the same units, ratio bisected to meet ``target`` MACs."""
    base = ctx.base.model
    members = {m.module for u in ctx.graph.units for m in u.members if m.dim == "out"}
    rt = ctx.base.runtime
    example = torch.zeros(1, *ctx.graph.input_size, device=rt.device)

    def prune_at(ratio: float) -> nn.Module:
        net = copy.deepcopy(base).float().to(memory_format=torch.contiguous_format)
        mods = dict(net.named_modules())
        ignored = [m for n, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in members]
        imp = {"l1": tp.importance.GroupMagnitudeImportance(p=1), "taylor": tp.importance.GroupTaylorImportance()}[
            importance
        ]
        pruner = tp.pruner.MetaPruner(
            net,
            example,
            importance=imp,
            global_pruning=global_pruning,
            pruning_ratio=ratio,
            max_pruning_ratio=ctx.budget.max_sparsity,
            ignored_layers=ignored,
        )
        if importance == "taylor":
            net.zero_grad()
            for x, y in batches(ctx.base.data.heldout.subset(512), 128, device=rt.device):
                F.cross_entropy(net(x), y).backward()
        pruner.step()
        net.zero_grad(set_to_none=True)
        return net

    lo, hi = 0.0, ctx.budget.max_sparsity
    best = None
    for _ in range(14):
        mid = (lo + hi) / 2
        net = prune_at(mid)
        if count_macs(net, ctx.graph.input_size) <= target * ctx.graph.base_macs:
            best, hi = net, mid
        else:
            lo = mid
    if best is None:
        best = prune_at(hi)
    return rt.prepare(best)


def measure(name: str, net: nn.Module, ctx, calib: list, args) -> dict:
    recalibrate_bn(net, calib, ctx.base.runtime.autocast)
    row = {"method": name, **measure_network(net, ctx, args.finetune_epochs, args.latency_seconds, f"fine-tune {name}")}
    print(
        f"{name:<22} MACs {row['macs_ratio']:.3f} params {row['params_ratio']:.3f} held-out {row['heldout_acc']:.2%} "
        f"test {row['test_acc']:.2%}"
        + (
            f" | fine-tuned held-out {row['ft_heldout_acc']:.2%} test {row['ft_test_acc']:.2%}"
            if "ft_test_acc" in row
            else ""
        )
        + f" | b1 {row['latency_b1_ms']:.2f} ms b64 {row['latency_b64_ms']:.1f} ms",
        flush=True,
    )
    return row


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--finetune-epochs", type=float, default=0.5)
    ap.add_argument("--latency-seconds", type=float, default=2.0)
    ap.add_argument(
        "--methods",
        nargs="*",
        default=list(
            dict.fromkeys(  # each once: the heuristics include Torch-Pruning's L1 pruners
                [*baselines.HEURISTICS, *(n for n in searcher_names() if get_searcher(n).learns), *TP_METHODS]
            )
        ),
    )
    ap.add_argument(
        "--policies",
        nargs="*",
        default=[],
        metavar="NAME=PATH",
        help="more policy files as rows (e.g. ddpg@s1=bench/results/policies/...); NAME@sK rows of one NAME "
        "are also summarised as mean and standard deviation over seeds",
    )
    ap.add_argument("--tag", default="", help="suffix of the result JSON's name")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--calib-images", type=int, default=2000, help="BN recalibration images per network")
    ap.add_argument("--criterion", default=ProxyConfig.criterion, help="channel criterion (l1, group-l1, ..., auto)")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.finetune_epochs, a.latency_seconds, a.calib_images = "resnet20", 0.02, 0.05, 100
        a.methods = ["uniform", "global", "tp-global-l1"]
    return a


def unpruned(ctx, rt: Runtime, latency_seconds: float) -> dict:
    """The base's held-out and test accuracy and its latency at batch 1 and 64."""
    return {
        "heldout_acc": evaluate(ctx.base.model, ctx.base.data.heldout, rt),
        "test_acc": evaluate(ctx.base.model, ctx.base.data.test, rt),
        **{
            f"latency_b{bs}_ms": 1e3 * measure_latency(ctx.base.model, rt, bs, ctx.graph.input_size, latency_seconds)
            for bs in (1, 64)
        },
    }


def pruned_net(
    method: str, extra: dict[str, Policy], ctx, proxy: NetworkBuilder, a, precision: str
) -> nn.Module | None:
    """The network of one row: a policy file, a Torch-Pruning pruner, a heuristic, or a search's saved best
    (None, with a message, when that search has not been run)."""
    if method in extra:
        return proxy.build(policy_keep(extra[method], ctx.graph))
    if method.startswith("tp-"):
        _, scope, imp = method.split("-")
        return torch_pruning_net(ctx, imp, scope == "global", a.flops)
    if method == "sensitivity":
        return proxy.build(baselines.sensitivity_keep(ctx, progress=False))
    if method in baselines.HEURISTICS:
        return proxy.build(baselines.HEURISTICS[method](ctx))
    path = RESULTS / "policies" / f"{a.model}-{method}-{precision}.json"
    if not path.exists():
        print(f"{method:<22} skipped: no {path} (run bench/search_speed.py --methods {method})")
        return None
    policy = load_policy(path)
    mismatch = budget_mismatch(policy, a)
    if mismatch:
        print(f"{method:<22} skipped: {path} {mismatch} (pass the right one with --policies {method}=PATH)")
        return None
    return proxy.build(policy_keep(policy, ctx.graph))


def budget_mismatch(policy: Policy, a: argparse.Namespace) -> str:
    """Why a search's saved policy is not a row of this table ("" when it is): it was searched for
    another budget or with another channel criterion (the file keeps only a method's latest search)."""
    budget = policy.budget
    if budget.get("kind") != "macs" or abs(float(budget.get("target", -1)) - a.flops) > 1e-9:
        return f"was searched for {budget.get('target')} of the {budget.get('kind')}, not {a.flops:g} of the MACs"
    if policy.criterion != a.criterion and not (a.criterion == AUTO and policy.criterion in CANDIDATES):
        return f"was searched with the {policy.criterion} criterion, not {a.criterion}"
    return ""


def checked_policies(a: argparse.Namespace) -> dict[str, Policy]:
    """The --policies rows, each file read once and checked against --flops and --criterion before any
    network is built: a mismatch exits with status 2 and one line, and writes nothing."""
    extra = {}
    for name, path in (item.split("=", 1) for item in a.policies):
        try:
            extra[name] = load_policy(path)
        except AmcError as exc:
            print(f"policy_quality: --policies {name}=...: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        mismatch = budget_mismatch(extra[name], a)
        if mismatch:
            print(f"policy_quality: --policies {name}={path} {mismatch}: pass one searched with --flops "
                  f"{a.flops:g} --criterion {a.criterion}", file=sys.stderr)  # fmt: skip
            raise SystemExit(2)
    return extra


def main() -> None:
    a = parse_args()
    extra = checked_policies(a)
    rt = Runtime.create("auto", a.precision)
    ctx = build_context(
        SearchSettings(
            model=a.model,
            data=data_spec(),
            checkpoint=str(base_checkpoint(a.model)),
            target=a.flops,
            allow_train=False,
            proxy=ProxyConfig(criterion=a.criterion),
        ),
        rt,
    )
    a.criterion = ctx.settings.proxy.criterion  # --criterion auto: the one measured for this base and budget
    extra = checked_policies(a)  # ... which the --policies must have been searched with
    config = BuildConfig(criterion=a.criterion, calib_images=a.calib_images)
    proxy = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, rt, config)
    calib = proxy.calib
    t0 = time.time()
    base = unpruned(ctx, rt, a.latency_seconds)
    print(
        f"{'unpruned':<22} held-out {base['heldout_acc']:.2%} test {base['test_acc']:.2%} | "
        f"b1 {base['latency_b1_ms']:.2f} ms b64 {base['latency_b64_ms']:.1f} ms",
        flush=True,
    )
    rows: list[dict] = []
    name = f"policy_quality-{a.model}" + ("-quick" if a.quick else "") + (f"-{a.tag}" if a.tag else "")
    for method in [*a.methods, *extra]:
        net = pruned_net(method, extra, ctx, proxy, a, rt.precision)
        if net is None:
            continue
        row = measure(method, net, ctx, calib, a)
        row["speedup_b1"] = base["latency_b1_ms"] / row["latency_b1_ms"]
        row["speedup_b64"] = base["latency_b64_ms"] / row["latency_b64_ms"]
        rows.append(row)
        payload = {"args": vars(a), "precision": rt.precision, "base": base, "rows": rows,
                   "over_seeds": over_seeds(rows), "seconds": round(time.time() - t0, 1)}  # fmt: skip
        write_result(name, payload)  # after every row: a stopped run keeps what it measured


def over_seeds(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of the rows named ``NAME@sK`` (K = seed), per NAME."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if "@s" in r["method"]:
            groups.setdefault(r["method"].split("@s")[0], []).append(r)
    out = []
    for method, rs in groups.items():
        row: dict = {"method": method, "seeds": len(rs)}
        for key in ("heldout_acc", "test_acc", "ft_heldout_acc", "ft_test_acc", "macs_ratio"):
            values = [r[key] for r in rs if key in r]
            if values:
                row[key] = statistics.fmean(values)
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


if __name__ == "__main__":
    main()
