import pytest
import torch

from amc.checkpoints import load_weights, read_checkpoint
from amc.errors import AmcError
from amc.macs import count_macs, flop_counter_macs, layer_table
from amc.models import BUILTIN, build_model

EXPECTED_MMACS = {"resnet20": 40.8, "resnet56": 125.7, "mobilenetv2": 88.0, "vgg19": 398, "resnet18": 555}


@pytest.mark.parametrize("name,mmacs", EXPECTED_MMACS.items())
def test_macs_match_published_figures(name, mmacs):
    assert count_macs(build_model(name)) / 1e6 == pytest.approx(mmacs, rel=0.01)


@pytest.mark.parametrize("name", BUILTIN)
def test_macs_agree_with_flop_counter_mode(name):
    model = build_model(name)
    assert count_macs(model) == flop_counter_macs(model)


def test_layer_table_lists_depthwise_and_linear():
    kinds = {layer.kind for layer in layer_table(build_model("mobilenetv2"))}
    assert kinds == {"conv", "dwconv", "linear"}


def test_num_classes_follows_the_data():
    out = build_model("resnet20", num_classes=7)(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 7)


def test_unknown_model_is_a_user_error():
    with pytest.raises(AmcError, match="unknown model 'resnet99'"):
        build_model("resnet99")


def test_import_path_model(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n"
        "def tiny(num_classes=10):\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(8, num_classes))\n"
        "def not_a_model(num_classes=10):\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_model("mynets:tiny", 4)(torch.zeros(1, 3, 32, 32)).shape == (1, 4)
    with pytest.raises(AmcError, match="not a torch.nn.Module"):
        build_model("mynets:not_a_model")
    with pytest.raises(AmcError, match="cannot import"):
        build_model("no_such_module_xyz:f")


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "mobilenetv2"])
def test_zoo_checkpoints_load_strictly(shared, name):
    state, _ = read_checkpoint(shared.zoo(name))
    load_weights(build_model(name), state)


@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_akamaster_checkpoints_load_strictly(shared, depth):
    state, meta = read_checkpoint(shared.akamaster(depth))
    load_weights(build_model(f"resnet{depth}"), state)
    assert meta["best_prec1"] > 90


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "vgg19"])
def test_folded_batchnorm_gives_the_same_outputs(name):
    """The proxy scores networks with BatchNorm folded into convolutions: same logits."""
    from amc.runtime import Runtime

    torch.manual_seed(0)
    net = build_model(name).eval()
    for m in net.modules():  # statistics far from the defaults, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    rt = Runtime.create("cpu", "fp32")
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = rt.prepare(net)(x)
        folded = rt.folded(net)
        got = folded(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # not in place: the original keeps them
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_network_fx_cannot_trace_runs_unfolded():
    from amc.runtime import Runtime

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() > 0 else x  # data-dependent control flow

    net = Branchy().eval()
    assert Runtime.create("cpu", "fp32").folded(net) is net
