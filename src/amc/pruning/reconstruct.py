"""Least-squares reconstruction of the layer that consumes a pruned unit (AMC / He et al. 2017
channel pruning): after some input channels are gone, refit that layer's weights so that its
outputs on sampled feature maps stay as close as possible to the unpruned network's.

With ``X`` the sampled inputs (unfolded patches) and ``W`` the original weights, the target is
``Y = X W^T``, so ``min ||X_S W_S^T - Y||`` needs only the Gram matrix ``G = X^T X``:
``W_S^T = (G_SS + r I)^-1 G_S: W^T``. ``G`` is accumulated once per unit; each policy then costs
one small solve per unit, not a pass over data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amc.pruning.units import Unit, UnitGraph

__all__ = ["Reconstructor"]


def _consumer(unit: Unit, modules: dict[str, nn.Module]) -> str | None:
    """The single dense layer whose input channels are exactly the unit's (channel i is input i),
    if there is exactly one."""
    identity = np.arange(unit.channels).reshape(-1, 1)
    cands = [
        m.module
        for m in unit.members
        if m.dim == "in"
        and isinstance(modules[m.module], (nn.Conv2d, nn.Linear))
        and getattr(modules[m.module], "groups", 1) == 1
        and np.array_equal(m.index_map, identity)
        and getattr(modules[m.module], "in_channels", getattr(modules[m.module], "in_features", -1)) == unit.channels
    ]
    return cands[0] if len(cands) == 1 else None


def _sample_patches(x: torch.Tensor, conv: nn.Conv2d, per_image: int, g: torch.Generator) -> torch.Tensor:
    """``per_image`` random receptive fields of ``conv`` per image, as rows ``(N*P, C*kh*kw)``
    in the order of ``conv.weight.flatten(1)`` (gathered directly: no full unfold)."""
    kh, kw = (int(v) for v in conv.kernel_size)
    sh, sw = (int(v) for v in conv.stride)
    ph, pw = (int(v) for v in conv.padding)  # string padding is not used by these models
    dh, dw = (int(v) for v in conv.dilation)
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    P = min(per_image, oh * ow)
    pos = torch.randint(0, oh * ow, (n, P), generator=g)
    oy, ox = (pos // ow) * sh, (pos % ow) * sw
    rows = (oy[:, :, None, None] + dh * torch.arange(kh)[:, None]).to(x.device)
    cols = (ox[:, :, None, None] + dw * torch.arange(kw)[None, :]).to(x.device)
    xp = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # N, H, W, C
    patches = xp[torch.arange(n, device=x.device)[:, None, None, None], rows, cols]  # N,P,kh,kw,C
    return patches.permute(0, 1, 4, 2, 3).reshape(n * P, c * kh * kw)


class Reconstructor:
    """Gram statistics of each consumer's inputs on calibration images, and the refit."""

    def __init__(
        self,
        base: nn.Module,
        graph: UnitGraph,
        inputs: list[torch.Tensor],
        positions_per_image: int = 16,
        ridge: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.graph = graph
        self.ridge = ridge
        modules = dict(base.named_modules())
        self.consumers = {u.index: c for u in graph.units if (c := _consumer(u, modules))}
        self.weights = {i: modules[c].weight.detach().float().cpu().clone() for i, c in self.consumers.items()}
        self.gram = self._accumulate(base, modules, inputs, positions_per_image, seed)

    @torch.no_grad()
    def _accumulate(
        self, base: nn.Module, modules: dict[str, nn.Module], inputs: list[torch.Tensor], per_image: int, seed: int
    ) -> dict[int, torch.Tensor]:
        gram: dict[int, torch.Tensor] = {}
        g = torch.Generator().manual_seed(seed)

        def hook_for(i: int, layer: nn.Module) -> Callable[..., None]:
            def hook(_m: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
                x = inp[0].float()
                if isinstance(layer, nn.Conv2d):
                    x = _sample_patches(x, layer, per_image, g)
                else:
                    x = x.reshape(-1, x.shape[-1])
                x = x.double().cpu()
                gram[i] = gram[i] + x.T @ x if i in gram else x.T @ x

            return hook

        hooks = [modules[c].register_forward_hook(hook_for(i, modules[c])) for i, c in self.consumers.items()]
        base.eval()
        try:
            for x in inputs:
                base(x.float() if x.dtype != torch.float32 else x)
        finally:
            for h in hooks:
                h.remove()
        return gram

    def refit(self, kept: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Full-size consumer weights, refit on the kept input channels (removed ones zero).

        Slicing the result with the pruning handlers gives the reconstructed pruned layer.
        """
        out: dict[str, torch.Tensor] = {}
        for i, name in self.consumers.items():
            unit = self.graph.units[i]
            if len(kept[i]) == unit.channels:
                continue
            W = self.weights[i]
            per = W[0].numel() // W.shape[1] if W.dim() == 4 else 1  # k*k features per channel
            S = torch.as_tensor((kept[i][:, None] * per + np.arange(per)).reshape(-1))
            G = self.gram[i]
            Wf = W.reshape(W.shape[0], -1).double()
            G_SS = G[S][:, S]
            r = self.ridge * G_SS.diagonal().mean().clamp_min(1e-12)
            rhs = G[S] @ Wf.T
            sol = torch.linalg.solve(G_SS + r * torch.eye(len(S), dtype=G.dtype), rhs)  # (|S|, out)
            full = torch.zeros_like(Wf)
            full[:, S] = sol.T
            out[name] = full.reshape(W.shape).float()
        return out
