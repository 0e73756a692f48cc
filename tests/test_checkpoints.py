import pytest
import torch

from amc.checkpoints import load_weights, read_checkpoint, save_checkpoint
from amc.errors import AmcError
from amc.models import build_model


@pytest.fixture
def model():
    return build_model("resnet20")


def test_plain_state_dict(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "a.pt")
    state, meta = read_checkpoint(tmp_path / "a.pt")
    load_weights(build_model("resnet20"), state)
    assert meta == {}


def test_akamaster_format_with_module_prefix(tmp_path, model):
    sd = {f"module.{k}": v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": sd, "best_prec1": torch.tensor(91.5)}, tmp_path / "b.th")
    state, meta = read_checkpoint(tmp_path / "b.th")
    fresh = build_model("resnet20")
    load_weights(fresh, state)
    assert meta["best_prec1"] == pytest.approx(91.5)
    assert torch.equal(fresh.conv1.weight, model.conv1.weight)


def test_project_format_round_trip(tmp_path, model):
    save_checkpoint(tmp_path / "c.pt", model, {"model": "resnet20", "test_acc": 0.5})
    state, meta = read_checkpoint(tmp_path / "c.pt")
    assert meta["test_acc"] == 0.5
    load_weights(build_model("resnet20"), state)


def test_wrong_model_names_first_mismatch(tmp_path):
    torch.save(build_model("resnet20").state_dict(), tmp_path / "r20.pt")
    state, _ = read_checkpoint(tmp_path / "r20.pt")
    with pytest.raises(AmcError, match="does not fit the model: it has no 'layer1.3.conv1.weight'"):
        load_weights(build_model("resnet56"), state)
    bad = dict(state)
    bad["conv1.weight"] = torch.zeros(32, 3, 3, 3)
    with pytest.raises(AmcError, match=r"'conv1.weight' is \(32, 3, 3, 3\) in the checkpoint but \(16, 3, 3, 3\)"):
        load_weights(build_model("resnet20"), bad)


@pytest.mark.parametrize("content", [b"hello, not a checkpoint", b""])
def test_not_a_checkpoint(tmp_path, content):
    (tmp_path / "x.pt").write_bytes(content)
    with pytest.raises(AmcError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "x.pt")


def test_truncated_checkpoint(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AmcError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "cut.pt")


class Opaque:  # a pickled object that weights_only loading refuses
    pass


def test_pickled_objects_need_explicit_trust(tmp_path, model):
    torch.save({"state_dict": model.state_dict(), "extra": Opaque()}, tmp_path / "legacy.pt")
    with pytest.raises(AmcError, match="--trust-checkpoint"):
        read_checkpoint(tmp_path / "legacy.pt")
    state, _ = read_checkpoint(tmp_path / "legacy.pt", trust=True)
    load_weights(build_model("resnet20"), state)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_mode_open_would_give(tmp_path, umask):
    """A policy or checkpoint written atomically is as readable as any file the user creates
    (mkstemp alone makes it owner-only), and the umask still rules."""
    import os

    from amc.checkpoints import atomic_write_bytes

    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "best.json", b"{}")
        (tmp_path / "plain.json").write_bytes(b"{}")
    finally:
        os.umask(old)
    mode = (tmp_path / "best.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o666 & ~umask
