"""Choosing the policy a search returns: its best candidates scored again on unseen images.

The search's proxy scores hundreds of policies on the same few hundred held-out images, and the
policy with the highest score is, in part, the one whose noise was kindest: the maximum of many
noisy scores is biased upwards. On ResNet-56 at 0.3 of the MACs a 500-image proxy put DDPG's
best 5 points above the sensitivity policy, which was 2 points better on the whole held-out
split (docs/experiments/resnet56-reference-0.3). Re-scoring the ``k`` best distinct policies
(and every heuristic the search's reference was chosen from, if it had one) on held-out images
the search never saw, after a larger BatchNorm recalibration, and returning the best there
removes that bias.
Results are kept in the study's folder, so a resumed search does not score them again.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from amc.checkpoints import atomic_write_bytes
from amc.proxy import ProxyEvaluator
from amc.scoring import reward_of
from amc.search.context import SearchContext
from amc.search.ddpg import REFERENCE_FILE

__all__ = ["candidates", "reference_keep", "rescore_best", "unseen_evaluator", "RESCORE_FILE"]

RESCORE_FILE = "rescore.json"


def candidates(trials: list[FrozenTrial], k: int, also: list[list[int]] | None = None) -> list[FrozenTrial]:
    """The ``k`` distinct policies with the highest proxy reward (earliest trial first on ties),
    and the first trial of every policy in ``also`` (e.g. the reference heuristic)."""
    ranked = sorted(trials, key=lambda t: (-float(t.value or 0.0), t.number))
    chosen: dict[tuple[int, ...], FrozenTrial] = {}
    for t in ranked:
        key = tuple(t.user_attrs["keep"])
        if len(chosen) < k and key not in chosen:
            chosen[key] = t
    wanted = {tuple(keep) for keep in also or []} - set(chosen)
    for t in sorted(trials, key=lambda t: t.number):
        key = tuple(t.user_attrs["keep"])
        if key in wanted:
            chosen[key] = t
            wanted.discard(key)
    return list(chosen.values())


def unseen_evaluator(ctx: SearchContext, size: int, criterion: str | None = None) -> ProxyEvaluator | None:
    """A proxy on up to ``size`` held-out images the search's proxy did not use, recalibrating
    BatchNorm on at least 1,000 training images, cutting channels by ``criterion`` (default: the
    search's); None when the held-out split has no image left."""
    cfg = ctx.proxy.config
    left = len(ctx.base.data.heldout) - cfg.heldout_used
    if left <= 0:
        n = len(ctx.base.data.heldout)
        confirm = f" and --confirm-images {cfg.confirm}" if cfg.confirm else ""
        warnings.warn(f"not re-scoring: the held-out split's {n} images all go to the search's proxy"
                      f" (--proxy-size {cfg.size}{confirm}); a smaller --proxy-size leaves some",
                      stacklevel=3)  # fmt: skip
        return None
    recalibrate = cfg.calib_images > 0 or cfg.bn == "batch"  # a batch-statistics search is re-scored recalibrated
    rescore_cfg = replace(
        cfg, size=min(size, left), calib_images=max(cfg.calib_images, 1000) if recalibrate else 0, bn="recalibrate",
        confirm=0, criterion=criterion or cfg.criterion,
    )  # fmt: skip
    return ProxyEvaluator(ctx.base.model, ctx.graph, ctx.base.data, ctx.base.runtime, rescore_cfg,
                          skip=cfg.heldout_used)  # fmt: skip


def _load(path: Path, images: int) -> dict[str, list[float]]:
    """Saved ``[accuracy, loss]`` per candidate (by its kept channels) on the same images."""
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return dict(saved["scores"]) if saved.get("images") == images and "scores" in saved else {}


def reference_keep(folder: Path) -> list[list[int]]:
    """The kept channels of the reference heuristic and of every heuristic it was chosen from,
    when the search had one (see amc.search.ddpg; an older search recorded only the chosen one)."""
    path = folder / REFERENCE_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}
    keep = record.get("keep")
    return ([keep] if keep else []) + [k for k in record.get("candidates", {}).values() if k != keep]


def rescore_best(
    ctx: SearchContext, trials: list[FrozenTrial], k: int, size: int, folder: Path, reward: str
) -> tuple[FrozenTrial, dict[str, Any]] | None:
    """The candidate (:func:`candidates`) with the highest reward on unseen held-out images, and
    what was measured; None when there is nothing to choose between or no image to score on."""
    cands = candidates(trials, k, reference_keep(folder))
    evaluator = unseen_evaluator(ctx, size) if len(cands) > 1 else None
    if evaluator is None:
        return None
    images = evaluator.images
    path = folder / RESCORE_FILE
    done = _load(path, images)
    rows = []
    for i, t in enumerate(cands):
        key = ",".join(str(c) for c in t.user_attrs["keep"])
        if key not in done:
            print(f"re-scoring candidate {i + 1}/{len(cands)} (trial {t.number}) on {images} unseen held-out images",
                  file=sys.stderr, flush=True)  # fmt: skip
            result = evaluator.evaluate(np.asarray(t.user_attrs["keep"]))
            done[key] = [result.accuracy, result.loss]
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, (json.dumps({"images": images, "scores": done}) + "\n").encode())
        acc, loss = done[key]
        macs = float(t.user_attrs["macs_ratio"]) * ctx.graph.base_macs
        rows.append((reward_of(reward, acc, macs, loss), -t.number, t, acc, loss))
    best = max(rows, key=lambda r: (r[0], r[1]))
    return best[2], {
        "rescore_images": images,
        "rescore_calib_images": evaluator.config.calib_images,
        "heldout_rescore_acc": best[3],
        "rescored": [
            {"trial": t.number, "proxy_acc": t.user_attrs["accuracy"], "rescore_acc": a, "rescore_loss": lo}
            for _, _, t, a, lo in rows
        ],
    }
