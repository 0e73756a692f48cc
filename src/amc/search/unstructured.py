"""Unstructured magnitude pruning as searchers (a comparison point: zeros give no dense
speed-up). ``unstructured-local`` prunes every layer to the same sparsity,
``unstructured-global`` uses one magnitude threshold over all layers. No study: there is one
policy and nothing to search."""

from __future__ import annotations

import copy

from amc.errors import AmcError
from amc.policy import Policy
from amc.search.base import Searcher, SearchSession, register_searcher

__all__ = ["UnstructuredLocal", "UnstructuredGlobal"]


class _Unstructured(Searcher):
    structure = "weights"
    mode = "local"

    def run(self, session: SearchSession) -> Policy | None:
        from amc.pruning import unstructured

        ctx = session.ctx
        s = ctx.settings
        if s.kind != "params":
            raise AmcError("unstructured pruning reduces non-zero weights, not dense MACs: pass --params TARGET")
        per_layer = unstructured.sparsities(ctx.base.model, s.target, self.mode)
        net = unstructured.make_permanent(unstructured.apply_masks(copy.deepcopy(ctx.base.model), per_layer))
        acc = ctx.proxy.recalibrated_accuracy(net)
        nonzero = sum(int((p != 0).sum()) for p in net.parameters()) / ctx.graph.base_params
        metrics = {
            "heldout_proxy_acc": acc,
            "base_heldout_proxy_acc": ctx.proxy.base_accuracy(),
            "trials": 1,
            "study": None,
            "note": "unstructured: zeros give no dense speed-up (same shapes, same MACs)",
            "nonzero_weight_fraction": unstructured.nonzero_fraction(net),
        }
        policy = ctx.policy(ctx.budget.channels, self.name, metrics)
        policy.sparsity, policy.structure = per_layer, "weights"
        policy.achieved = {
            "macs_ratio": 1.0,
            "params_ratio": 1.0,
            "nonzero_params_ratio": nonzero,
            "macs": ctx.graph.base_macs,
            "params": ctx.graph.base_params,
        }
        policy.budget["kind"] = "nonzero-params"
        return policy


@register_searcher
class UnstructuredLocal(_Unstructured):
    name = "unstructured-local"
    mode = "local"
    description = "per-layer weight magnitude pruning (masks; no dense speed-up)"


@register_searcher
class UnstructuredGlobal(_Unstructured):
    name = "unstructured-global"
    mode = "global"
    description = "one weight-magnitude threshold over all layers (masks; no dense speed-up)"
