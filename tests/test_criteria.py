"""Channel criteria: the group L1 norm ranks channels as Torch-Pruning's group importance does."""

import numpy as np
import pytest
import torch
import torch_pruning as tp
from torch import nn

from amc.models import build_model, get_spec
from amc.pruning.criteria import channel_scores, criterion_names
from amc.pruning.prune import kept_indices
from amc.pruning.units import UnitGraph


def _randomised(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.normal_(p)
        else:
            nn.init.uniform_(p, -1, 1)  # BN scales of both signs: the L1 takes their size
    return model.eval()


@pytest.mark.parametrize("name", ["resnet20", "vgg19"])
def test_group_l1_keeps_the_channels_torch_pruning_s_group_importance_keeps(name):
    model = _randomised(build_model(name))
    graph = UnitGraph(model, rule=get_spec(name).unit_rule)
    importance = tp.importance.GroupMagnitudeImportance(p=1, normalizer=None)
    modules = dict(model.named_modules())
    keep = np.maximum(graph.channels // 3, 1)
    ours = kept_indices(channel_scores(model, graph, "group-l1"), keep)
    filter_only = kept_indices(channel_scores(model, graph, "l1"), keep)
    differs = 0
    for unit, kept, by_filter in zip(graph.units, ours, filter_only):
        layer = modules[unit.name]
        group = graph.dg.get_pruning_group(layer, tp.prune_conv_out_channels, idxs=list(range(layer.out_channels)))
        theirs = np.sort(np.argsort(-importance(group).numpy(), kind="stable")[: len(kept)])
        assert np.array_equal(np.sort(kept), theirs), unit.name
        differs += not np.array_equal(np.sort(kept), np.sort(by_filter))
    assert differs > 0  # the consumers' and BatchNorms' weights change the choice


def test_group_l1_counts_every_coupled_weight_including_depthwise_filters():
    conv1, bn1, dw, bn2, conv3 = (
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
        nn.BatchNorm2d(6),
        nn.Conv2d(6, 5, 1, bias=False),
    )
    model = _randomised(
        nn.Sequential(
            conv1, bn1, nn.ReLU(), dw, bn2, nn.ReLU(), conv3, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4)
        )  # fmt: skip
    )
    graph = UnitGraph(model, (3, 8, 8), rule="expanded", classifier="9")
    assert [u.name for u in graph.units] == ["0"]
    (scores,) = channel_scores(model, graph, "group-l1")
    l1 = [
        conv1.weight.abs().flatten(1).sum(1),
        bn1.weight.abs(),
        dw.weight.abs().flatten(1).sum(1),
        bn2.weight.abs(),
        conv3.weight.abs().transpose(0, 1).flatten(1).sum(1),
    ]
    expected = torch.stack(l1).mean(0).detach().numpy()
    assert np.allclose(scores, expected, rtol=1e-5)
    assert "group-l1" in criterion_names()
