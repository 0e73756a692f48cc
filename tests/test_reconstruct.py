import numpy as np
import torch

from amc.models import build_model
from amc.pruning.criteria import channel_scores
from amc.pruning.prune import kept_indices, prune_model
from amc.pruning.reconstruct import Reconstructor
from amc.pruning.units import UnitGraph


def test_least_squares_refit_reduces_output_error():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    graph = UnitGraph(model)
    inputs = [torch.randn(16, 3, 32, 32) for _ in range(2)]
    rec = Reconstructor(model, graph, inputs, positions_per_image=64)
    keep = (graph.channels * 0.5).astype(int)
    kept = kept_indices(channel_scores(model, graph, "l1"), keep)
    plain = prune_model(model, graph, kept)
    refit = prune_model(model, graph, kept, rec.refit(kept))
    # compare the first block's conv2 output (its input channels were pruned) to the original
    x = torch.randn(8, 3, 32, 32)
    outs = {}
    for tag, net in (("orig", model), ("plain", plain), ("refit", refit)):
        h = net.layer1[0].conv2.register_forward_hook(lambda m, i, o, tag=tag: outs.__setitem__(tag, o))
        with torch.no_grad():
            net(x)
        h.remove()
    err_plain = (outs["plain"] - outs["orig"]).pow(2).mean()
    err_refit = (outs["refit"] - outs["orig"]).pow(2).mean()
    assert err_refit < 0.8 * err_plain
    assert np.all([w.shape[1] == k for w, k in [(refit.layer1[0].conv2.weight, keep[0])]])
