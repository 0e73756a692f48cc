"""Render docs/experiments/resnet56-search-defaults/README.md from the search and policy-quality
results of the default DDPG, the paper's settings (--preset amc-paper) and Optuna TPE.

    python bench/search_defaults_report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS  # noqa: E402

OUT = Path("docs/experiments/resnet56-search-defaults/README.md")
SEARCHES = {"ddpg (default)": "r56-ddpg-default", "ddpg (--preset amc-paper)": "r56-ddpg-paper",
            "optuna TPE": "r56-optuna"}  # fmt: skip


def _search_rows() -> list[str]:
    rows = ["| searcher | minutes | s/episode | best proxy | MACs used |", "|---|---|---|---|---|"]
    for label, tag in SEARCHES.items():
        path = RESULTS / f"search_speed-{tag}.json"
        if not path.exists():
            rows.append(f"| {label} | not run | | | |")
            continue
        r = json.loads(path.read_text())["rows"][0]
        rows.append(f"| {label} | {r['minutes']:.1f} | {r['seconds_per_episode']:.2f} | "
                    f"{r['best_heldout_proxy_acc']:.2%} | {r['achieved_macs_ratio']:.3f} |")  # fmt: skip
    return rows


def _quality_rows() -> list[str]:
    path = RESULTS / "policy_quality-resnet56-s0.json"
    if not path.exists():
        return ["(policy quality not measured yet)"]
    d = json.loads(path.read_text())
    b = d["base"]
    rows = [f"Unpruned: held-out {b['heldout_acc']:.2%}, test {b['test_acc']:.2%}. Command: `{d['command']}`.", "",
            "| method | MACs | params | held-out | test |", "|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(d["rows"], key=lambda r: -r["heldout_acc"]):
        rows.append(f"| {r['method']} | {r['macs_ratio']:.3f} | {r['params_ratio']:.3f} | {r['heldout_acc']:.2%} | "
                    f"{r['test_acc']:.2%} |")  # fmt: skip
    return rows


def main() -> None:
    lines = [
        "# ResNet-56 at half the MACs: the default DDPG, the paper's settings and Optuna",
        "",
        "One seed each (seed 0), 200 episodes (50 warm-up), proxy 500 held-out images with BN recalibrated",
        "on 250, fp32 on a 2-core AMD EPYC (AVX2, no native bf16), the machine busy with other work",
        "(minutes are not speed figures). Searches: `python bench/search_speed.py --models resnet56",
        "--precisions fp32 --episodes 200 --warmup 50 --proxy-size 500 --calib-images 250 [--methods optuna]",
        "[--projection amc --no-fill --demos --sigma-decay 0.95]`.",
        "",
        *_search_rows(),
        "",
        "## The policies on the full held-out and test splits (BN recalibrated on 2,000 images, no fine-tuning)",
        "",
        *_quality_rows(),
        "",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
