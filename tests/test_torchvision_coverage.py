"""Any CNN: torchvision's classifiers, with residual groups off and on. Half of every unit's
channels removed at random; the physically pruned network must compute what zero-masking the
same channels computes, and its MACs and parameters must equal the analytic counts. Small inputs keep it fast.

Where a unit's channels pass through a LayerNorm (ConvNeXt's residual stream), zeroing channels
changes the norm's mean and variance, so the masked reference normalises over the kept channels
only (``_norms_over_kept``): what cutting them computes.

Known gaps are listed in ``KNOWN`` (strict xfail: a fix makes them fail until moved out). Heads that
run only in training mode (GoogLeNet's and Inception's auxiliary classifiers) are not in the
traced graph: build such models without them, or prune them separately."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from amc.macs import count_macs, count_params
from amc.pruning.prune import mask_channels, prune_model
from amc.pruning.units import UnitGraph

MODELS = [
    "alexnet",
    "vgg11_bn",
    "resnet18",
    "resnet50",
    "wide_resnet50_2",
    "resnext50_32x4d",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mnasnet0_5",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "convnext_tiny",
    "densenet121",
    "googlenet",
    "inception_v3",
    "squeezenet1_1",
]  # fmt: skip; shufflenet_v2_x0_5 is refused (test_refused_models)
KNOWN: dict[tuple[str, bool], str] = {}
CASES = [
    pytest.param(m, r, marks=pytest.mark.xfail(reason=KNOWN[(m, r)], strict=True)) if (m, r) in KNOWN else (m, r)
    for m in MODELS
    for r in (False, True)
]


@pytest.mark.parametrize("name,residual", CASES)
def test_pruned_equals_masked(name, residual):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # auxiliary heads run only in training mode: the graph is traced in eval mode, so they are off
        extra = {"aux_logits": False} if name in ("googlenet", "inception_v3") else {}
        model = getattr(tvm, name)(num_classes=10, **extra).eval()
        size = (3, 75, 75) if name == "inception_v3" else (3, 64, 64)
        graph = UnitGraph(model, size, residual=residual)
    rng = np.random.default_rng(0)
    kept = [np.sort(rng.choice(u.channels, max(1, u.channels // 2), replace=False)) for u in graph.units]
    x = torch.randn(2, *size)
    pruned = prune_model(model, graph, kept)
    with torch.no_grad():
        masked = _norms_over_kept(mask_channels(model, graph, kept), graph, kept)
        assert torch.allclose(pruned(x), masked(x), atol=1e-4, rtol=1e-4)
    keep = np.array([len(k) for k in kept])
    assert count_macs(pruned, size) == pytest.approx(graph.cost(keep)[0], rel=1e-9)
    assert count_params(pruned) == pytest.approx(graph.cost(keep)[1], rel=1e-9)
    pruned.train()
    pruned(torch.randn(2, *size)).sum().backward()  # and it trains


def _norms_over_kept(model: nn.Module, graph: UnitGraph, kept: list[np.ndarray]) -> nn.Module:
    """``model`` with every LayerNorm that a unit cuts normalising over its kept channels only
    (the removed ones stay zero)."""
    modules = dict(model.named_modules())
    for unit, keep in zip(graph.units, kept):
        for mem in unit.members:
            norm = modules[mem.module]
            if isinstance(norm, nn.LayerNorm) and mem.param is None:
                idx = torch.as_tensor(np.sort(mem.index_map[keep].reshape(-1)))
                channels_first = type(norm).__name__ == "LayerNorm2d"
                norm.forward = _kept_norm(norm, idx, channels_first)  # type: ignore[method-assign]
    return model


def _kept_norm(norm: nn.LayerNorm, idx: torch.Tensor, channels_first: bool):
    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1) if channels_first else x
        out = torch.zeros_like(x)
        out[..., idx] = F.layer_norm(x[..., idx], (len(idx),), norm.weight[idx], norm.bias[idx], norm.eps)
        return out.permute(0, 3, 1, 2) if channels_first else out

    return forward


@pytest.mark.parametrize("name", ["resnext50_32x4d", "regnet_x_400mf", "regnet_y_400mf"])
def test_grouped_convolutions_keep_the_same_channels_in_every_group(name):
    model = getattr(tvm, name)(num_classes=10).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is left out any more
        graph = UnitGraph(model, (3, 64, 64))
    grouped = [u for u in graph.units if u.fold is not None]
    assert grouped, "no unit passes through a grouped convolution"
    rng = np.random.default_rng(1)
    kept = [np.sort(rng.choice(u.channels, max(1, u.channels // 3), replace=False)) for u in graph.units]
    pruned = dict(prune_model(model, graph, kept).named_modules())
    base = dict(model.named_modules())
    for unit, keep in zip(graph.units, kept):
        if unit.fold is None:
            continue
        conv = next(base[m.module] for m in unit.members if getattr(base[m.module], "groups", 1) > 1)
        name_ = next(m.module for m in unit.members if base[m.module] is conv)
        groups = conv.groups
        assert unit.channels * groups in (conv.in_channels, conv.out_channels)
        cut = pruned[name_]
        assert cut.groups == groups and len(keep) * groups in (cut.in_channels, cut.out_channels)


@pytest.mark.parametrize(
    "name,size,reason",
    [
        ("shufflenet_v2_x0_5", 64, "cannot trace the channel dependencies.*channel shuffle"),
        ("swin_t", 224, "'features.1.0.attn' is an attention layer.*out of its scope"),
        ("vit_b_16", 224, "attention layer \\(MultiheadAttention\\)"),
    ],
)
def test_refused_models(name, size, reason):
    from amc.errors import AmcError

    model = getattr(tvm, name)(num_classes=10).eval()
    with pytest.raises(AmcError, match=reason) as info:
        UnitGraph(model, (3, size, size))
    assert "\n" not in str(info.value)


class _Concats(nn.Module):
    """What a user's own CNN may do: nested concatenations, one tensor concatenated twice, a
    grouped convolution, a one-channel convolution (a spatial attention map), and (``fed_by_cat``)
    a grouped convolution whose groups are different units' channels."""

    def __init__(self, fed_by_cat: bool = False, gate: bool = False) -> None:
        super().__init__()
        self.fed_by_cat, self.gate = fed_by_cat, gate
        self.a, self.b, self.c = (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)) for _ in range(3))
        self.mix = nn.Sequential(nn.Conv2d(32, 16, 1), nn.BatchNorm2d(16))
        self.grouped = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=4), nn.BatchNorm2d(16))
        self.attention = nn.Conv2d(16, 1, 1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = self.a(x).relu(), self.b(x).relu(), self.c(x).relu()
        y = self.mix(torch.cat([torch.cat([a, b], 1), c, a], 1)).relu()  # nested, and `a` twice
        side = self.grouped(torch.cat([a, b], 1)).relu() if self.fed_by_cat else None
        y = self.grouped(y).relu() if side is None else y + side  # the sum couples them: not a unit here
        if self.gate:  # a one-channel map multiplied onto every channel
            return self.head(y.mean((2, 3)) * torch.sigmoid(self.attention(y)).mean((2, 3)))
        return self.head(y.mean((2, 3))) + self.attention(y).mean((2, 3))


def _check_equivalence(model: nn.Module, graph: UnitGraph, size: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        kept = [np.sort(rng.choice(u.channels, rng.integers(1, u.channels + 1), replace=False)) for u in graph.units]
        pruned = prune_model(model, graph, kept)
        x = torch.randn(2, *size)
        with torch.no_grad():
            assert torch.allclose(pruned(x), mask_channels(model, graph, kept)(x), atol=1e-5)
        assert count_macs(pruned, size) == pytest.approx(graph.cost(np.array([len(k) for k in kept]))[0])


def test_a_users_concatenations_and_groups():
    torch.manual_seed(0)
    model = _Concats().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = UnitGraph(model, (3, 16, 16))
    assert graph.names() == ["a.0", "b.0", "c.0", "mix.0", "grouped.0"]
    assert graph.units[3].fold is not None and graph.units[3].channels == 4  # 16 channels in 4 groups
    _check_equivalence(model, graph, (3, 16, 16))


def test_a_grouped_convolution_fed_by_a_concatenation_is_left_out_with_a_warning():
    torch.manual_seed(0)
    model = _Concats(fed_by_cat=True).eval()
    with pytest.warns(UserWarning, match="a.0 \\(grouped convolution grouped.0 with 4 groups takes only part"):
        graph = UnitGraph(model, (3, 16, 16))
    assert graph.names() == ["c.0"]


def test_a_channel_gate_leaves_its_input_unpruned_with_a_warning():
    model = _Concats(gate=True).eval()
    with pytest.warns(UserWarning, match="grouped.0 \\(multiplied by the one-channel attention\\)"):
        graph = UnitGraph(model, (3, 16, 16))
    assert "grouped.0" not in graph.names()
    _check_equivalence(model, graph, (3, 16, 16))
    _check_equivalence(model, graph, (3, 16, 16))


def _family(name: str) -> str:
    """``regnet_y_800mf`` -> ``regnet``, ``mobilenet_v3_large`` -> ``mobilenet``: the architecture."""
    import re

    return re.split(r"[_\d]", name, maxsplit=1)[0]


def test_every_torchvision_classifier_family_is_covered_or_refused():
    """A torchvision release that adds a classifier family fails here until it is in MODELS (and
    passes there) or among the refused (transformers, ShuffleNet)."""
    refused = {"shufflenet", "swin", "vit", "maxvit"}
    covered = {_family(m) for m in MODELS}
    missing = sorted({_family(n) for n in tvm.list_models(module=tvm)} - covered - refused)
    assert not missing, f"torchvision classifiers not in this suite: {missing}"
