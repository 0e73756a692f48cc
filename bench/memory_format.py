"""Contiguous vs channels_last on this machine: median seconds of one inference batch (the
search's proxy and evaluation) and of one training step (forward, backward, SGD), per model and
precision. It is what `Runtime.channels_last` rests on.

    python bench/memory_format.py                       # resnet56, mobilenetv2, vgg19; eval b250, train b128
    python bench/memory_format.py --quick               # CI: resnet20, small batches, short timings
The two formats are timed in alternation (--rounds), so drift in the machine's load hits both;
the minimum over rounds of the per-round median is reported. Run it on an idle machine.
Writes bench/results/memory_format[-quick].json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from amc.deploy.runtimes import median_seconds  # noqa: E402
from amc.models import build_model  # noqa: E402
from amc.runtime import cpu_has_bf16  # noqa: E402

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


@contextlib.contextmanager
def _precision(precision: str) -> Iterator[None]:
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def _eval_step(net: nn.Module, x: torch.Tensor, precision: str) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad(), _precision(precision):
            return net(x)

    return run


def _train_step(net: nn.Module, x: torch.Tensor, precision: str) -> Callable[[], object]:
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    y = torch.randint(0, 10, (x.shape[0],))

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        with _precision(precision):
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return run


def time_pair(model: str, mode: str, batch: int, precision: str, rounds: int, seconds: float) -> dict:
    """Both formats of one (model, mode, precision), timed in alternation."""
    torch.manual_seed(0)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fmt in FORMATS.items():
            net = build_model(model).train(mode == "train").to(memory_format=fmt)
            x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
            step = (_train_step if mode == "train" else _eval_step)(net, x, precision)
            s = median_seconds(step, min_time=seconds, warmup=2, min_runs=3)
            best[name] = min(best.get(name, s), s)
    row = {"model": model, "mode": mode, "batch": batch, "precision": precision}
    row |= {f"{k}_s": v for k, v in best.items()}
    row["speedup"] = best["contiguous"] / best["channels_last"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenetv2", "vgg19"])
    ap.add_argument("--eval-batch", type=int, default=250)
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--precisions", nargs="+", default=None, help="fp32, bf16 (default: fp32, and bf16 if native)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="timing per format and round")
    ap.add_argument("--quick", action="store_true", help="CI size: resnet20, batches 16/8, short timings")
    a = ap.parse_args()
    if a.quick:
        a.models, a.eval_batch, a.train_batch, a.rounds, a.seconds = ["resnet20"], 16, 8, 1, 0.05
    precisions = a.precisions or (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"])
    bad = set(precisions) - {"fp32", "bf16"}
    if bad:
        sys.exit(f"error: unknown precision(s) {sorted(bad)}: use fp32 or bf16")
    rows = []
    for model in a.models:
        for precision in precisions:
            for mode, batch in (("eval", a.eval_batch), ("train", a.train_batch)):
                row = time_pair(model, mode, batch, precision, a.rounds, a.seconds)
                rows.append(row)
                print(
                    f"{model} {mode} b{batch} {precision}: contiguous {row['contiguous_s']:.3f} s, "
                    f"channels_last {row['channels_last_s']:.3f} s ({row['speedup']:.2f}x)",
                    flush=True,
                )
    write_result("memory_format" + ("-quick" if a.quick else ""), {"bf16_native": cpu_has_bf16(), "rows": rows})


if __name__ == "__main__":
    main()
