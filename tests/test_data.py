import time

import numpy as np
import pytest
import torch
from helpers import make_imagefolder

from amc.data import augment, batches, load_data, normalize
from amc.errors import AmcError


def test_imagefolder_splits(tiny_data):
    d = load_data(str(tiny_data))
    assert d.classes == ("class0", "class1", "class2")
    assert (len(d.train), len(d.heldout), len(d.test)) == (54, 6, 15)
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (3, 32, 32)
    # held-out = the last 10% of each class by sorted file name (files 0018, 0019)
    from PIL import Image

    last = np.asarray(Image.open(tiny_data / "train" / "class1" / "0019.png")).transpose(2, 0, 1)
    held_class1 = d.heldout.images[d.heldout.labels == 1]
    assert any(torch.equal(img, torch.from_numpy(last)) for img in held_class1)


def test_second_load_comes_from_cache(tiny_data):
    load_data(str(tiny_data))
    t = time.perf_counter()
    again = load_data(str(tiny_data))
    assert time.perf_counter() - t < 1.0
    assert len(again.train) == 54


def test_augment_is_vectorised_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    y = augment(x, g, pad=0)
    assert y.shape == x.shape
    for i in range(2):  # with no padding, the only change is a horizontal flip
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1))
    z = augment(x, torch.Generator().manual_seed(1), pad=4)
    assert z.shape == x.shape


def test_batches_normalise_and_cover_everything(tiny_data):
    d = load_data(str(tiny_data))
    seen = sum(len(y) for _, y in batches(d.test, 4))
    assert seen == len(d.test)
    x = normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)


@pytest.mark.parametrize(
    "breakage,message",
    [
        ("no_test", "no 'test/' folder"),
        ("empty_class", "has no images"),
        ("bad_image", "cannot read image"),
        ("class_mismatch", "different class folders"),
    ],
)
def test_bad_imagefolder_is_a_user_error(tmp_path, breakage, message):
    root = make_imagefolder(tmp_path / "d", classes=2, train=3, test=2)
    if breakage == "no_test":
        import shutil

        shutil.rmtree(root / "test")
    elif breakage == "empty_class":
        (root / "train" / "class9").mkdir()
        (root / "test" / "class9").mkdir()
    elif breakage == "bad_image":
        (root / "train" / "class0" / "0000.png").write_bytes(b"not an image")
    elif breakage == "class_mismatch":
        (root / "test" / "class1").rename(root / "test" / "other")
    with pytest.raises(AmcError, match=message):
        load_data(str(root))


def test_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(AmcError, match="does not exist"):
        load_data(str(tmp_path / "nowhere"))


def test_real_data_splits_match_shared_readme(shared):
    d = load_data(str(shared.data))
    assert d.name == "cifar10-jpeg"
    assert (len(d.train), len(d.heldout), len(d.test)) == (45000, 5000, 10000)
    assert d.classes[0] == "airplane" and d.classes[-1] == "truck"
    assert torch.bincount(d.heldout.labels).tolist() == [500] * 10
