"""Does the held-out split rank the contenders as the test split does? Read from the policy_quality
rows already measured (no network is run): for each model and budget, the policies scored before
fine-tuning, how far apart their held-out and test accuracies are, and how well the held-out
order among the best ``--top`` predicts their test order.

A search may only look at the held-out split, so where the two orders disagree among near-ties,
no search can be sure to win on test. The CIFAR ResNet bases are the suspects: their weights
come from akamaster's, trained on the original pixels of the held-out images (../shared/README.md).

    python bench/heldout_agreement.py [--top 10]
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
from _common import RESULTS, write_result
from scipy.stats import spearmanr


def collect(paths: list[str]) -> dict[tuple[str, float], dict[tuple[float, float], str]]:
    """(model, budget) -> {(held-out, test): who}: every policy scored without fine-tuning, each
    distinct pair once (the same policy measured in several files counts once)."""
    groups: dict[tuple[str, float], dict[tuple[float, float], str]] = {}
    for path in sorted(paths):
        result = json.loads(Path(path).read_text())
        args = result.get("args", {})
        if args.get("finetune_epochs") or args.get("quick") or args.get("flops") is None:
            continue
        group = groups.setdefault((args["model"], float(args["flops"])), {})
        for row in result["rows"]:
            if row.get("heldout_acc") is None or row.get("test_acc") is None:
                continue
            pair = (round(row["heldout_acc"], 4), round(row["test_acc"], 4))
            group.setdefault(pair, f"{row['method']} ({Path(path).stem.removeprefix('policy_quality-')})")
    return groups


def agreement(pairs: list[tuple[float, float]], top: int, near: float = 0.01) -> dict[str, float | int]:
    """How the held-out order among the ``top`` best held-out policies matches their test order."""
    best = sorted(pairs, reverse=True)[:top]
    h, t = np.array(best).T
    gap = h - t
    return {
        "policies": len(pairs),
        "top": len(best),
        "spearman_all": float(spearmanr(*np.array(pairs).T)[0]),
        "spearman_top": float(spearmanr(h, t)[0]),
        "heldout_spread_top": float(h.max() - h.min()),
        "test_spread_top": float(t.max() - t.min()),
        "gap_min_top": float(gap.min()),
        "gap_max_top": float(gap.max()),
        "best_heldout_test_rank": int(1 + np.sum(t > t[0])),
        **near_pairs(pairs, near),
    }


def near_pairs(pairs: list[tuple[float, float]], near: float) -> dict[str, float | int]:
    """Of the pairs of policies whose held-out accuracies differ by less than ``near`` (but
    differ), the share that test orders the same way."""
    same = total = 0
    for i, (h1, t1) in enumerate(pairs):
        for h2, t2 in pairs[i + 1 :]:
            if 0 < abs(h1 - h2) < near:
                total += 1
                same += (h1 - h2) * (t1 - t2) > 0
    return {"near_pairs": total, "near_pairs_same_order": same / total if total else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=10, help="how many of the best held-out policies to compare")
    ap.add_argument("--near", type=float, default=0.01, help="held-out accuracies this close make a near pair")
    ap.add_argument("--min-policies", type=int, default=6, help="skip a model and budget with fewer")
    args = ap.parse_args()
    groups = collect(glob.glob(str(RESULTS / "policy_quality-*.json")))
    rows = []
    for (model, flops), found in sorted(groups.items()):
        if len(found) < args.min_policies:
            continue
        row = {"model": model, "flops": flops, **agreement(list(found), args.top, args.near)}
        best = max(found)
        row["best_heldout"] = {"policy": found[best], "heldout_acc": best[0], "test_acc": best[1]}
        rows.append(row)
        print(
            f"{model:12s} {flops:.1f}  {row['policies']:3d} policies  spearman all {row['spearman_all']:.2f}"
            f"  top {row['top']}: spearman {row['spearman_top']:.2f},"
            f" held-out spread {100 * row['heldout_spread_top']:.1f} pt,"
            f" held-out - test {100 * row['gap_min_top']:.1f}..{100 * row['gap_max_top']:.1f} pt,"
            f" the best held-out is #{row['best_heldout_test_rank']} on test;"
            f" {row['near_pairs']} near pairs, test agrees on {100 * row['near_pairs_same_order']:.0f}%"
        )
    write_result("heldout_agreement", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
