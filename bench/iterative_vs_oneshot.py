"""Experiment 5: iterative Taylor pruning with short fine-tuning between the cuts vs one-shot
magnitude pruning, at the same final network (the uniform policy at --flops) and the same
total fine-tuning; the other two combinations (one-shot Taylor, iterative L1) separate the
schedule's effect from the criterion's.

    python bench/iterative_vs_oneshot.py --model resnet56 --flops 0.5 --steps 4 --finetune-epochs 0.4
    python bench/iterative_vs_oneshot.py --quick     # CI: resnet20, 2 steps, tiny fine-tuning
The same runs one at a time: amc apply POLICY --iterative 4 --criterion taylor --finetune-epochs 0.4
Writes bench/results/iterative_vs_oneshot-MODEL[-quick].json and docs/experiments/MODEL-iterative-vs-oneshot/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, experiment_paths, write_experiment, write_result  # noqa: E402

from amc.experiments import iterative_vs_oneshot  # noqa: E402
from amc.report import schedule_plot  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.baselines import uniform_keep  # noqa: E402
from amc.search.context import SearchSettings, build_context  # noqa: E402

COLUMNS = [
    ("schedule", "schedule", ""),
    ("criterion", "channel scores", ""),
    ("macs_ratio", "MACs kept", ".3f"),
    ("params_ratio", "params kept", ".3f"),
    ("finetune_epochs", "total fine-tuning (epochs)", "g"),
    ("heldout_acc", "held-out acc", ".2%"),
    ("test_acc", "test acc", ".2%"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--flops", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--finetune-epochs", type=float, default=0.4)
    ap.add_argument("--criteria", nargs="+", default=["l1", "taylor"])
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.steps, a.finetune_epochs, a.calib_images = "resnet20", 2, 0.02, 100
    name, out = experiment_paths("iterative_vs_oneshot", a.model, a.quick, a.out)
    rt = Runtime.create()
    settings = SearchSettings(
        model=a.model, data=data_spec(), checkpoint=str(base_checkpoint(a.model)), target=a.flops, allow_train=False
    )
    ctx = build_context(settings, rt)
    keep = uniform_keep(ctx)
    rows = iterative_vs_oneshot(ctx.base, ctx.graph, keep, a.steps, a.finetune_epochs, a.criteria, a.calib_images)
    for r in rows:
        print(
            f"{r['schedule']:<13} {r['criterion']:<7} MACs {r['macs_ratio']:.3f}  held-out {r['heldout_acc']:.2%}"
            f"  test {r['test_acc']:.2%}",
            flush=True,
        )
    title = (
        f"{a.model} on {ctx.base.data.name}: uniform policy at {a.flops:g} of MACs, "
        f"{a.finetune_epochs:g} epochs of fine-tuning in total"
    )
    out.mkdir(parents=True, exist_ok=True)
    schedule_plot(rows, title, out / "iterative-vs-oneshot.png")
    notes = (
        f"Every run ends with the same network shape (the uniform policy at {a.flops:g} of MACs) and the same total "
        f"training: one-shot cuts once and fine-tunes {a.finetune_epochs:g} epochs; iterative cuts in {a.steps} equal "
        f"steps, re-scoring channels on the current network before each cut and fine-tuning "
        f"{a.finetune_epochs / a.steps:g} epochs after each (cosine from lr 0.01, BatchNorm recalibrated after "
        "each cut)."
    )
    write_experiment(out, title, rows, COLUMNS, notes)
    write_result(name, {"args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
