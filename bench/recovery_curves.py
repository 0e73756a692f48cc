"""Accuracy per fine-tuning epoch after structured and unstructured pruning at 0, 0.2, 0.4,
0.6 and 0.8 of the parameters removed (uniform channels cut vs global weight magnitude masks),
5 epochs of SGD cosine from lr 0.01 each, on the held-out and the test split.

    python bench/recovery_curves.py --model resnet20            # about 45 epochs of training
    python bench/recovery_curves.py --quick                     # CI: one rate, 1 epoch
Every run saves its state after each epoch under --runs (runs/recovery-MODEL): run the same
command again after a stop and it continues. Writes bench/results/recovery_curves-MODEL[-quick].json
and, with one figure per kind, docs/experiments/MODEL-recovery-curves/ (--out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import base_checkpoint, data_spec, experiment_paths, write_experiment, write_result  # noqa: E402

from amc.base import open_base  # noqa: E402
from amc.experiments import recovery_curves  # noqa: E402
from amc.report import recovery_plot  # noqa: E402
from amc.runtime import Runtime  # noqa: E402
from amc.search.context import unit_graph_for  # noqa: E402

COLUMNS = [
    ("kind", "pruning", ""),
    ("sparsity", "params removed (asked)", ".1f"),
    ("params_kept", "params kept (measured)", ".3f"),
    ("macs_ratio", "MACs kept", ".3f"),
    ("epoch", "epoch", ""),
    ("heldout_acc", "held-out acc", ".2%"),
    ("test_acc", "test acc", ".2%"),
    ("seconds", "wall s", ".0f"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--runs", type=Path, default=None, help="where each run's state is kept (runs/recovery-MODEL)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.model, a.sparsities, a.epochs, a.calib_images = "resnet20", [0.6], 1, 100
    name, out = experiment_paths("recovery_curves", a.model, a.quick, a.out)
    runs = a.runs or Path("runs") / (f"recovery-{a.model}" + ("-quick" if a.quick else ""))
    t0 = time.time()
    rt = Runtime.create()
    base = open_base(a.model, data_spec(), str(base_checkpoint(a.model)), rt)
    graph = unit_graph_for(a.model, base, False)
    rows = recovery_curves(base, graph, runs, a.sparsities, a.epochs, a.lr, a.calib_images)
    for r in rows:
        print(f"{r['kind']:<13} s={r['sparsity']:.1f} epoch {r['epoch']}  held-out {r['heldout_acc']:.2%}  "
              f"test {r['test_acc']:.2%}", flush=True)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for kind in ("structured", "unstructured"):
        title = f"{a.model} on {base.data.name}: {kind} pruning, test accuracy per epoch (cosine from lr {a.lr:g})"
        recovery_plot(rows, kind, title, out / f"{kind}-test-per-epoch.png")
    notes = (
        "Structured = the uniform channel policy keeping at most that fraction of parameters, cut out (a smaller "
        "dense network); unstructured = global weight-magnitude masks over conv/linear weights except the "
        "classifier, kept through fine-tuning. Both BatchNorm-recalibrated; epoch 0 is before fine-tuning. The "
        "0-removed run is the unpruned base fine-tuned the same way, shown in both figures. 'wall s' is the "
        "fine-tuning time so far of that run, evaluation included."
    )
    write_experiment(out, f"{a.model}: accuracy per fine-tuning epoch after pruning", rows, COLUMNS, notes)
    write_result(name, {"args": {**vars(a), "runs": str(runs), "out": str(out)}, "rows": rows,
                        "seconds": round(time.time() - t0, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
