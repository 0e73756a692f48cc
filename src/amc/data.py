"""Data sets as in-memory uint8 tensors, their splits, and fast batches.

Three sources:
  - ``cifar10`` / ``cifar100``: torchvision's copies, downloaded into the cache directory when
    missing (needs the internet once);
  - a path to an ImageFolder tree with ``train/<class>/*`` and ``test/<class>/*`` (this is how
    ``cifar10-jpeg`` is read).

Images are decoded once and cached as a ``.npz`` of uint8 arrays under the cache directory
(``$AMC_CACHE``, default ``~/.cache/amc``), so a second load takes well under a second.

Splits: ``train`` (what training sees), ``heldout`` (the last 10% of each class's training
files by sorted name: the only split a search may score on) and ``test`` (final reports only).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from amc.errors import AmcError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Split",
    "DataBundle",
    "load_data",
    "cache_dir",
    "batches",
    "augment",
    "normalize",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HELDOUT_FRACTION = 0.1
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


@dataclass(frozen=True)
class Split:
    """Images ``(N, 3, H, W)`` uint8 in [0, 255] and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, n: int | None, seed: int = 0, skip: int = 0) -> Split:
        """``n`` images drawn class-balanced-by-chance with a fixed seed (all when ``n`` is None).
        ``skip`` passes over the first images of the same draw: ``subset(m, seed, skip=n)`` shares
        no image with ``subset(n, seed)``."""
        if (n is None or n >= len(self)) and not skip:
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[skip : skip + (len(self) if n is None else n)].sort().values
        return Split(self.images[idx], self.labels[idx])


@dataclass(frozen=True)
class DataBundle:
    """A data set's three splits, its class names and the name results are reported under."""

    name: str
    classes: tuple[str, ...]
    train: Split
    heldout: Split
    test: Split
    spec: str = ""  # how to load it again: a torchvision name or an absolute path
    fingerprint: str = ""  # identity of the content (class and file names), not of where it lies

    def identity(self) -> dict[str, str]:
        """What a policy records to find this data set again and to recognise it."""
        return {"name": self.name, "spec": self.spec, "fingerprint": self.fingerprint}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in ("train", "heldout", "test"):
            raise AmcError(f"unknown split '{name}': use train, heldout or test")
        split: Split = getattr(self, name)
        return split


def cache_dir() -> Path:
    """Where decoded data and trained bases are cached: ``$AMC_CACHE`` or ``~/.cache/amc``."""
    return Path(os.environ.get("AMC_CACHE", Path.home() / ".cache" / "amc"))


def cache_file(folder: str, model: str, ident: dict[str, Any]) -> Path:
    """``cache_dir()/folder/MODEL-DIGEST.json``: a measurement kept between processes, named by a
    digest of everything it depends on (``ident``, JSON)."""
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / folder / f"{model.replace(':', '_')}-{digest}.json"


def _heldout_mask(labels: np.ndarray) -> np.ndarray:
    """True for the last ``HELDOUT_FRACTION`` of each class, in the order given."""
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        n_held = int(round(len(where) * HELDOUT_FRACTION))
        if n_held:
            mask[where[-n_held:]] = True
    return mask


def _bundle(
    name: str,
    classes: list[str],
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
) -> DataBundle:
    held = _heldout_mask(train_y)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return DataBundle(
        name=name,
        classes=tuple(classes),
        train=Split(t(train_x[~held]), t(train_y[~held]).long()),
        heldout=Split(t(train_x[held]), t(train_y[held]).long()),
        test=Split(t(test_x), t(test_y).long()),
        spec=name,
        fingerprint=name,
    )


def _load_torchvision(name: str, root: Path) -> DataBundle:
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    arrays = {}
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            try:
                ds = cls(str(root), train=train, download=True)
            except Exception as exc:
                raise AmcError(
                    f"{name} is not in {root} and could not be downloaded ({exc.__class__.__name__}):"
                    f" connect to the internet once, or pass --data PATH to an ImageFolder tree"
                ) from None
        x = np.asarray(ds.data).transpose(0, 3, 1, 2)  # NHWC -> NCHW
        arrays[train] = (x, np.asarray(ds.targets, dtype=np.int64), ds.classes)
    (tx, ty, classes), (vx, vy, _) = arrays[True], arrays[False]
    return _bundle(name, classes, tx, ty, vx, vy)


def _list_tree(split_dir: Path) -> tuple[list[str], list[_Listing]]:
    if not split_dir.is_dir():
        raise AmcError(
            f"ImageFolder tree has no '{split_dir.name}/' folder at {split_dir}:"
            " it needs train/<class>/* and test/<class>/*"
        )
    classes = sorted(d.name for d in os.scandir(split_dir) if d.is_dir())
    if not classes:
        raise AmcError(f"{split_dir} has no class folders: put images in {split_dir}/<class>/")
    files = []
    for c in classes:
        folder = split_dir / c
        names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES)
        if not names:
            raise AmcError(f"class folder {folder} has no images: add images or remove it")
        files.append(_Listing(folder, names))
    return classes, files


class _Listing(list[Path]):
    """File paths of one class folder, built lazily from its sorted names (60,000 Path objects
    cost more than loading the cached tensors)."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        super().__init__()
        self.folder, self.names = folder, names

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Path]:
        return (self.folder / n for n in self.names)

    def __getitem__(self, i: int) -> Path:  # type: ignore[override]
        return self.folder / self.names[i]


def _decode(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
            if size is not None and im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise AmcError(f"cannot read image {path}: {exc}; remove or replace the file") from None


def _decode_all(files: list[Path], size: tuple[int, int], desc: str) -> np.ndarray:
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        decoded = list(
            tqdm(
                pool.map(lambda p: _decode(p, size), files, chunksize=256),
                total=len(files),
                desc=desc,
                unit="img",
                leave=False,
                disable=None,
            )
        )
    return np.stack(decoded)


def _tree_key(root: Path, listing: list[_Listing]) -> str:
    """Identity of a tree: every file name, each class folder's mtime, and the size and mtime of
    every 97th file (stat-ing all 60,000 files would cost more than loading the cache)."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for group in listing:
        h.update(f"{group.folder}|{group.folder.stat().st_mtime_ns}\n".encode())
        h.update("\n".join(group.names).encode())
        for name in group.names[::97]:
            st = (group.folder / name).stat()
            h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _content_key(listing: list[_Listing]) -> str:
    """Identity of a tree's content wherever it lies: class folder and file names."""
    h = hashlib.sha256()
    for group in listing:
        h.update(f"{group.folder.parent.name}/{group.folder.name}|".encode())
        h.update("\n".join(group.names).encode())
    return h.hexdigest()[:16]


def _load_imagefolder(root: Path, cache: Path) -> DataBundle:
    if not root.is_dir():
        raise AmcError(f"data directory {root} does not exist: pass --data cifar10 or an ImageFolder path")
    train_classes, train_files = _list_tree(root / "train")
    test_classes, test_files = _list_tree(root / "test")
    if train_classes != test_classes:
        raise AmcError(
            f"train/ and test/ in {root} have different class folders: "
            f"{sorted(set(train_classes) ^ set(test_classes))}; make them the same"
        )
    key = _tree_key(root, train_files + test_files)
    cached = cache / "imagefolder" / f"{root.resolve().name}-v2-{key}"
    if not (cached / "done").exists():
        size = _decode(train_files[0][0], None).shape[1:][::-1]  # (W, H) of the first image

        def decode(listing: list[_Listing], desc: str) -> tuple[np.ndarray, np.ndarray]:
            flat = [p for paths in listing for p in paths]
            labels = np.concatenate([np.full(len(p), i, np.int64) for i, p in enumerate(listing)])
            return _decode_all(flat, size, desc), labels

        tx, ty = decode(train_files, "decoding train")
        vx, vy = decode(test_files, "decoding test")
        held = _heldout_mask(ty)
        tmp = cached.with_name(cached.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        splits = {
            "train_x": tx[~held],
            "train_y": ty[~held],
            "heldout_x": tx[held],
            "heldout_y": ty[held],
            "test_x": vx,
            "test_y": vy,
        }
        for name, arr in splits.items():
            np.save(tmp / f"{name}.npy", arr)
        (tmp / "done").write_text("ok")
        if cached.exists():
            import shutil

            shutil.rmtree(cached)
        os.replace(tmp, cached)

    def split(name: str) -> Split:  # copy-on-write memory maps: pages are read when first used
        x, y = (torch.from_numpy(np.load(cached / f"{name}_{k}.npy", mmap_mode="c")) for k in "xy")
        return Split(x, y.long())

    return DataBundle(
        root.resolve().name,
        tuple(train_classes),
        split("train"),
        split("heldout"),
        split("test"),
        spec=str(root.resolve()),
        fingerprint=_content_key(train_files + test_files),
    )


def load_data(spec: str, cache: Path | None = None) -> DataBundle:
    """Load ``cifar10``, ``cifar100`` or an ImageFolder tree at path ``spec``."""
    cache = cache or cache_dir()
    if spec in ("cifar10", "cifar100"):
        return _load_torchvision(spec, cache / "torchvision")
    return _load_imagefolder(Path(spec).expanduser(), cache)


def normalize(
    images: torch.Tensor,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> float32, scaled to [0, 1] then standardised per channel."""
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1) * 255.0
    return (images.float() - m) / s


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel crop and horizontal flip of a uint8 batch, vectorised (no loop)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)
    cols = torch.where(flip[:, None], dx[:, None] + w - 1 - torch.arange(w), dx[:, None] + torch.arange(w))
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    train_augment: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised float batches ``(x, y)`` on ``device``; the last batch may be smaller."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=g) if shuffle else torch.arange(len(split))
    for start in range(0, len(split), batch_size):
        idx = order[start : start + batch_size]
        x = split.images[idx]
        if train_augment:
            x = augment(x, g)
        x = normalize(x.to(device, non_blocking=True), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, split.labels[idx].to(device, non_blocking=True)
