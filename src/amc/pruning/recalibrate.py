"""BatchNorm recalibration: re-estimate running statistics after pruning.

Pruning changes every later layer's input distribution, so the stored BN statistics are
stale; re-estimating them on a few thousand training images (no labels, no gradients)
recovers most of the accuracy before any fine-tuning (cf. EagleEye, Li et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn

__all__ = ["recalibrate_bn", "use_batch_statistics"]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, inputs: list[torch.Tensor], autocast: Callable[[], AbstractContextManager[None]] | None = None
) -> nn.Module:
    """Reset BN running stats and average them over the given batches (``momentum=None``).

    ``inputs`` are ready-made normalised batches on the model's device. Returns the model in
    eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or not inputs:
        return model.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for x in inputs:
        if autocast is not None:
            with autocast():
                model(x)
        else:
            model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


def use_batch_statistics(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with every BatchNorm normalising each batch by its own statistics:
    its running statistics are dropped (so the model cannot be folded or saved as it was), and
    dropout stays off. The proxy's ``bn="batch"`` mode: no recalibration pass before scoring."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean, m.running_var, m.num_batches_tracked = None, None, None
            m.track_running_stats = False
    return model.eval()
