"""Benchmark 4 (proxy fidelity) and the bf16-vs-fp32 ranking check of the search issue.

Draws policies of varied quality that meet the budget (random bounded episodes of the search
environment, plus uniform and global), then:

  * ranks them by the bf16 and the fp32 proxy (Spearman, target >= 0.95);
  * scores them with several proxy settings (BN recalibration on/off, proxy sizes) and compares
    each ranking with the accuracy after a short fine-tuning of every policy (the ground truth
    the proxy stands in for), on the full held-out split and on the test split.

    python bench/proxy_fidelity.py --model resnet56 --policies 10 --finetune-epochs 0.5
    python bench/proxy_fidelity.py --quick
Writes bench/results/proxy_fidelity[-quick].json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, write_result  # noqa: E402

from amc.env import PruningEnv  # noqa: E402
from amc.proxy import ProxyConfig, ProxyEvaluator  # noqa: E402
from amc.pruning.build import BuildConfig, NetworkBuilder  # noqa: E402
from amc.runtime import Runtime, cpu_has_bf16  # noqa: E402
from amc.search.baselines import global_keep, uniform_keep  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402
from amc.training import TrainConfig, evaluate, train  # noqa: E402


def random_policies(ctx, n: int, seed: int) -> list[np.ndarray]:
    env = PruningEnv(ctx.budget, lambda keep: 0.0)
    rng = np.random.default_rng(seed)
    out = [uniform_keep(ctx), global_keep(ctx)]
    while len(out) < n:
        env.reset(seed=len(out))
        for _ in range(env.n):
            *_, info = env.step(rng.uniform(-1, 1, 1))
        out.append(info["keep"])
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--policies", type=int, default=10)
    ap.add_argument("--rank-policies", type=int, default=20, help="policies for the bf16/fp32 ranking")
    ap.add_argument("--finetune-epochs", type=float, default=0.5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--calib", type=int, nargs="+", default=[0, 250, 500, 1000])
    ap.add_argument("--truth-calib", type=int, default=2000, help="BN recalibration images before fine-tuning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.policies, a.rank_policies, a.finetune_epochs = "resnet20", 3, 3, 0.02
        a.sizes, a.calib, a.truth_calib = [200], [0, 100], 100
    return a


def precision_ranking(ctx, rt: Runtime, rank_pols: list) -> tuple[dict, float | None]:
    """The default proxy's scores of the same policies in bf16 and fp32, and their Spearman (bf16 only where it is
    native: an emulated bf16 is several times slower than fp32 and is never what the search runs)."""
    ranking = {}
    native_bf16 = cpu_has_bf16() if rt.device.type == "cpu" else torch.cuda.is_bf16_supported()
    for precision in ("bf16", "fp32") if native_bf16 else ("fp32",):
        prt = Runtime.create("auto", precision)
        ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, prt, ctx.settings.proxy)
        ranking[prt.precision] = [ev.evaluate(k).accuracy for k in rank_pols]
    rho = spearmanr(ranking.get("bf16", []), ranking["fp32"]).statistic if "bf16" in ranking else None
    print(f"bf16 vs fp32 proxy ranking over {len(rank_pols)} policies: Spearman {rho}", flush=True)
    return ranking, rho


def settings_scores(ctx, rt: Runtime, pols: list, a: argparse.Namespace) -> dict[str, dict]:
    """Each proxy setting's scores of the policies, and its seconds per policy."""
    scores = {}
    for cfg in (ProxyConfig(size=s, calib_images=c) for s in a.sizes for c in a.calib):
        ev = ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, rt, cfg)
        start = time.time()
        scores[f"size{cfg.size}-calib{cfg.calib_images}"] = {
            "acc": [ev.evaluate(k).accuracy for k in pols],
            "seconds_per_policy": (time.time() - start) / len(pols),
        }
    return scores


def finetuned_truth(ctx, rt: Runtime, pols: list, a: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Held-out and test accuracy of each policy after BN recalibration and a short fine-tuning."""
    data, held, test = ctx.base.data, [], []
    builder = NetworkBuilder(ctx.base.model, ctx.graph, data, rt, BuildConfig(calib_images=a.truth_calib))
    for i, keep in enumerate(pols):
        net = builder.build(keep)
        config = TrainConfig(epochs=a.finetune_epochs, lr=0.01, schedule="cosine", seed=i)
        train(net, data.train, rt, config, desc=f"fine-tune {i + 1}/{len(pols)}")
        held.append(evaluate(net, data.heldout, rt))
        test.append(evaluate(net, data.test, rt))
        print(
            f"policy {i}: macs {ctx.budget.ratio(keep):.3f} fine-tuned held-out {held[-1]:.4f} test {test[-1]:.4f}",
            flush=True,
        )
    return held, test


def fidelity_rows(proxy_scores: dict[str, dict], truth_held: list[float], truth_test: list[float]) -> list[dict]:
    rows = []
    for name, s in proxy_scores.items():
        rows.append(
            {
                "proxy": name,
                "seconds_per_policy": round(s["seconds_per_policy"], 3),
                "spearman_vs_finetuned_test": spearmanr(s["acc"], truth_test).statistic,
                "spearman_vs_finetuned_heldout": spearmanr(s["acc"], truth_held).statistic,
                "proxy_acc": s["acc"],
            }
        )
        print(
            f"{name:<22} {rows[-1]['seconds_per_policy']:6.2f} s/policy  Spearman vs fine-tuned test "
            f"{rows[-1]['spearman_vs_finetuned_test']:.3f}  held-out {rows[-1]['spearman_vs_finetuned_heldout']:.3f}"
        )
    return rows


def main() -> None:
    a = parse_args()
    rt = Runtime.create("auto", "auto")
    settings = SearchSettings(
        model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)), target=0.5, allow_train=False
    )
    ctx = build_context(settings, rt)
    t0 = time.time()
    rank_pols = random_policies(ctx, a.rank_policies, a.seed)
    ranking, rho_prec = precision_ranking(ctx, rt, rank_pols)  # 1. bf16 vs fp32 ranking
    pols = rank_pols[: a.policies]  # 2. proxy settings vs accuracy after fine-tuning
    proxy_scores = settings_scores(ctx, rt, pols, a)
    truth_held, truth_test = finetuned_truth(ctx, rt, pols, a)
    write_result(
        "proxy_fidelity" + ("-quick" if a.quick else f"-{a.model}"),
        {
            "args": vars(a),
            "precision_ranking": {"spearman_bf16_vs_fp32": rho_prec, "scores": ranking},
            "finetuned": {"heldout": truth_held, "test": truth_test, "macs_ratio": [ctx.budget.ratio(k) for k in pols]},
            "rows": fidelity_rows(proxy_scores, truth_held, truth_test),
            "seconds": round(time.time() - t0, 1),
        },
    )


if __name__ == "__main__":
    main()
