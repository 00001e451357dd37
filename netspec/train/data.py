"""Data sets as whole uint8 tensors, and batches made from them on the device.

Every data set becomes four tensors — train/test images (N, C, H, W) uint8 and labels (N,) int64 — that are moved
once to the training device.  A batch is an index tensor: gather, augment (still uint8), convert to float in
[0, 1] and resize with `F.interpolate`, all on the device, so the hot loop runs no Python per example.
Images are scaled to [0, 1] without mean/std normalization, as the course does.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import tarfile
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from netspec.train.datasets import CIFAR10, SOURCES, DataError, locate

FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 4096 * 4096   # per image of a folder data set (each is resized to the network's input)
VAL_SEED = 20240607              # the validation split's permutation: fixed, whatever the run's seed


@dataclass(frozen=True)
class DataSet:
    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor   # (N, C, H, W) uint8
    train_y: torch.Tensor   # (N,) int64
    test_x: torch.Tensor    # (M, C, H, W) uint8; no examples when data from Python comes without a test set
    test_y: torch.Tensor    # (M,) int64
    val_x: torch.Tensor | None = None   # a validation set (`val_split`, a folder's val/, or given from Python)
    val_y: torch.Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def has_val(self) -> bool:
        return self.val_y is not None

    @property
    def has_test(self) -> bool:
        return len(self.test_y) > 0

    def to(self, device) -> "DataSet":
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")
                 if getattr(self, k) is not None}
        return replace(self, **moved)

    def subset(self, n: int | None) -> "DataSet":
        """The first `n` training, test (and validation) examples (every set is already shuffled at source)."""
        if n is None:
            return self
        val = {"val_x": self.val_x[:n], "val_y": self.val_y[:n]} if self.has_val else {}
        return replace(self, train_x=self.train_x[:n], train_y=self.train_y[:n],
                       test_x=self.test_x[:n], test_y=self.test_y[:n], **val)

    def split_val(self, fraction: float) -> "DataSet":
        """Holds out `fraction` of the training set for validation: a fixed permutation (VAL_SEED, not the run's
        seed, so runs with different seeds are compared on the same examples), the same on every machine."""
        if not fraction:
            return self
        if self.has_val:
            raise DataError(f"{self.name} has its own validation set (val/); drop val_split (--val-split)")
        n = len(self.train_y)
        held = round(n * fraction)
        if not 1 <= held < n:
            raise DataError(f"val_split {fraction} of {n:,} training examples holds out {held}; it must leave at "
                            "least one for validation and one for training")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))
        val, train = order[:held].sort().values, order[held:].sort().values
        return replace(self, train_x=self.train_x[train], train_y=self.train_y[train],
                       val_x=self.train_x[val], val_y=self.train_y[val])


def load_dataset(name: str, shape: tuple[int, int, int], data_dir: str | None = None, download: bool = True,
                 opener: Callable | None = None) -> DataSet:
    """`name` is fashion-mnist, mnist, cifar10, folder:PATH or synthetic; `shape` (C, H, W) is the network's
    input, used by the sets that are made to measure (folders, synthetic).  Every set is checked (`checked`)
    before it is used."""
    if name in ("fashion-mnist", "mnist"):
        paths = locate(SOURCES[name], data_dir, download, opener=opener)
        classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
        (train_x, test_x), (train_y, test_y) = (
            [read_idx(paths[f], "images", MNIST_COUNTS[f], MNIST_SIDE).unsqueeze(1) for f in MNIST_IMAGES],
            [read_idx(paths[f], "labels", MNIST_COUNTS[f]).long() for f in MNIST_LABELS])
        return checked(DataSet(name, classes, train_x, train_y, test_x, test_y))
    if name == "cifar10":
        return checked(read_cifar10(data_dir, download, opener))
    if name.startswith("folder:"):
        return checked(read_folder(Path(name.split(":", 1)[1]), shape))
    if name == "synthetic":
        return synthetic(shape)
    if name == "python":
        raise DataError("this run trained on data given from Python; continue it from Python with "
                        "netspec.train(resume=RUN_DIR, train_data=…, val_data=…, test_data=…)")
    raise DataError(f"unknown data set `{name}`")


def checked(data: DataSet) -> DataSet:
    """DataError unless each split has examples, as many labels as images, and labels within the classes: a
    mismatch once trained silently on the shorter count, a label past the classes failed inside the loss."""
    splits = [("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)]
    if data.has_val:
        splits.append(("val", data.val_x, data.val_y))
    for split, images, labels in splits:
        if len(images) != len(labels):
            raise DataError(f"{data.name}: {len(images):,} {split} images but {len(labels):,} labels; the image and "
                            "label files do not belong together")
        if not len(labels):
            if split == "test" and data.name == "python":   # given from Python without a test set: none run
                continue
            raise DataError(f"{data.name}: no {split} examples")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= len(data.classes):
            raise DataError(f"{data.name}: {split} label {high if high >= len(data.classes) else low} is not one "
                            f"of its {len(data.classes)} classes (0 to {len(data.classes) - 1})")
    return data


# ── IDX (MNIST, Fashion-MNIST) ────────────────────────────────────────────────────────────────────────────────

IDX_MAGIC = {2051: 3, 2049: 1}   # images: N×H×W; labels: N
IDX_KINDS = {"images": 2051, "labels": 2049}
MNIST_SIDE = 28
MNIST_IMAGES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
MNIST_LABELS = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_COUNTS = {MNIST_IMAGES[0]: 60_000, MNIST_LABELS[0]: 60_000, MNIST_IMAGES[1]: 10_000, MNIST_LABELS[1]: 10_000}
MAX_IDX_BYTES = 256 << 20   # any IDX file read without a known shape: 5× the largest MNIST file


def read_idx(path: Path, kind: str | None = None, max_items: int | None = None,
             side: int | None = None) -> torch.Tensor:
    """An IDX file (gzip or raw) as a uint8 tensor: (N, H, W) for images, (N,) for labels.

    The header's dimensions are checked before the data is read: against `kind` (images or labels), at most
    `max_items` examples of `side`×`side` pixels when given, and at most MAX_IDX_BYTES in all; then exactly that
    many bytes are read, incrementally, so a small gzip file that claims gigabytes is refused, not unpacked."""
    try:
        with open(path, "rb") as raw:
            packed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if packed else raw
            header = stream.read(4)
            magic = struct.unpack(">I", header)[0] if len(header) == 4 else None
            if magic not in IDX_MAGIC:
                raise DataError(f"{path}: not an IDX file of bytes (magic {magic}, expected 2051 or 2049)")
            if kind is not None and magic != IDX_KINDS[kind]:
                other = "images" if kind == "labels" else "labels"
                raise DataError(f"{path}: an IDX file of {other} where {kind} belong (magic {magic}, expected "
                                f"{IDX_KINDS[kind]}); are the image and label files swapped?")
            rank = IDX_MAGIC[magic]
            packed_dims = stream.read(4 * rank)
            if len(packed_dims) != 4 * rank:
                raise DataError(f"{path}: the IDX header is truncated ({4 + len(packed_dims)} of {4 + 4 * rank} "
                                "bytes)")
            dims = struct.unpack(f">{rank}I", packed_dims)
            count = _idx_bytes(path, dims, max_items, side)
            if not packed and os.fstat(raw.fileno()).st_size != 4 + 4 * rank + count:
                raise DataError(f"{path}: {os.fstat(raw.fileno()).st_size - 4 - 4 * rank} bytes of data for "
                                f"dimensions {dims}; the file is truncated or corrupt")
            data = stream.read(count + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read ({err})")
    if len(data) != count:
        raise DataError(f"{path}: {len(data) if len(data) <= count else 'more'} bytes of data for dimensions "
                        f"{dims}; the file is truncated or corrupt")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)


def _idx_bytes(path: Path, dims: tuple[int, ...], max_items: int | None, side: int | None) -> int:
    """The data bytes the header declares, once they fit the expected shape and the bound."""
    if dims[0] == 0:
        raise DataError(f"{path}: holds no examples (dimensions {dims})")
    if max_items is not None and dims[0] > max_items:
        raise DataError(f"{path}: claims {dims[0]:,} examples; this data set has at most {max_items:,}")
    if side is not None and tuple(dims[1:]) != (side, side):
        raise DataError(f"{path}: images of {'×'.join(map(str, dims[1:]))} pixels; this data set's are "
                        f"{side}×{side}")
    count = math.prod(dims)
    if count > MAX_IDX_BYTES:
        raise DataError(f"{path}: claims {count:,} bytes of data (dimensions {dims}); the limit is "
                        f"{MAX_IDX_BYTES:,}")
    return count


# ── CIFAR-10, binary version (never the pickled one) ──────────────────────────────────────────────────────────

CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
CIFAR_BATCH_BYTES = 10_000 * CIFAR_RECORD   # each batch file holds 10,000 records; a larger one is refused unread


def read_cifar10(data_dir: str | None, download: bool, opener: Callable | None = None) -> DataSet:
    extracted = _cifar_folder(data_dir)
    if extracted is not None:
        blobs = []
        for member in CIFAR_MEMBERS:
            _check_cifar_size(extracted / member, (extracted / member).stat().st_size)
            blobs.append((extracted / member).read_bytes())
    else:
        archive = locate(CIFAR10, data_dir, download, opener=opener)["cifar-10-binary.tar.gz"]
        blobs = _cifar_members(archive)
    train = [_cifar_records(b, m) for b, m in zip(blobs[:5], CIFAR_MEMBERS)]
    test = _cifar_records(blobs[5], CIFAR_MEMBERS[5])
    return DataSet("cifar10", CIFAR_CLASSES, torch.cat([x for x, _ in train]), torch.cat([y for _, y in train]),
                   test[0], test[1])


def _cifar_folder(data_dir: str | None) -> Path | None:
    """An already extracted `cifar-10-batches-bin/` in the searched folders, if any."""
    from netspec.train.datasets import candidate_dirs

    for _, folder in candidate_dirs(CIFAR10, data_dir):
        for candidate in ((folder / "cifar-10-batches-bin", folder) if folder else ()):
            if all((candidate / m).is_file() for m in CIFAR_MEMBERS):
                return candidate
    return None


def _cifar_members(archive: Path) -> list[bytes]:
    """The six batch files, read from the archive by exact name (nothing is extracted to disk)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            out = []
            for member in CIFAR_MEMBERS:
                _check_cifar_size(archive / member, tar.getmember(f"cifar-10-batches-bin/{member}").size)
                handle = tar.extractfile(f"cifar-10-batches-bin/{member}")
                if handle is None:
                    raise KeyError(member)
                out.append(handle.read())
            return out
    except (KeyError, tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{archive}: not the CIFAR-10 binary archive ({err})")


def _check_cifar_size(where: Path, size: int) -> None:
    if size > CIFAR_BATCH_BYTES:
        raise DataError(f"{where}: {size:,} bytes; a CIFAR-10 batch file holds at most {CIFAR_BATCH_BYTES:,}")


def _cifar_records(blob: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if len(blob) % CIFAR_RECORD:
        raise DataError(f"{name}: {len(blob)} bytes is not a whole number of {CIFAR_RECORD}-byte records")
    records = torch.frombuffer(bytearray(blob), dtype=torch.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32).clone(), records[:, 0].long()


# ── image folders ─────────────────────────────────────────────────────────────────────────────────────────────

def read_folder(root: Path, shape: tuple[int, int, int]) -> DataSet:
    """`root/train/<class>/*.png` and `root/test/<class>/*`, with `root/val/<class>/*` the validation set when
    there is one (with train/ and val/ alone, val/ is the test set); with no such split, `root/<class>/*` and
    every 10th image of each class held out for testing.  Images are resized to the network's input."""
    if not root.is_dir():
        raise DataError(f"folder:{root}: no such folder")
    train_dir = root / "train"
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        classes = _classes(train_dir)
        train, test = _images(train_dir, classes, shape), _images(test_dir, classes, shape)
        if test_dir.name == "test" and (root / "val").is_dir():
            val_x, val_y = _images(root / "val", classes, shape)
            return DataSet(f"folder:{root}", classes, train[0], train[1], test[0], test[1], val_x, val_y)
    else:
        classes = _classes(root)
        every = _images(root, classes, shape)
        held = torch.arange(len(every[1])) % 10 == 9
        if not held.any():
            raise DataError(f"folder:{root}: {len(every[1])} images are too few to hold out every 10th for testing; "
                            f"give it at least 10, or make {root}/train/<class>/ and {root}/test/<class>/")
        train, test = (every[0][~held], every[1][~held]), (every[0][held], every[1][held])
    return DataSet(f"folder:{root}", classes, train[0], train[1], test[0], test[1])


def _classes(folder: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise DataError(f"{folder}: no class folders; expected {folder}/<class>/<image files>")
    return classes


def _images(folder: Path, classes: tuple[str, ...], shape: tuple[int, int, int]):
    try:
        from PIL import Image
    except ImportError:
        raise DataError("image folders need Pillow: pip install pillow")
    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise DataError(f"image folders give 1 or 3 channels; the network takes {channels}")
    xs, ys = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if (folder / name).is_dir() else []
        for path in files:
            pixels = _read_image(Image, path, mode, (width, height))
            xs.append(torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(height, width, channels))
            ys.append(label)
    if not xs:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    return torch.stack(xs).permute(0, 3, 1, 2).contiguous(), torch.tensor(ys, dtype=torch.long)


def _read_image(Image, path: Path, mode: str, size: tuple[int, int]) -> bytes:
    """The image's pixels in `mode`, resized; DataError for an unreadable one or one past MAX_IMAGE_PIXELS (the
    header is read first, so an image that would unpack to gigabytes is refused before any pixel)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the bound below is lower than PIL's
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise DataError(f"{path}: {image.width}×{image.height} pixels; images in a folder data set "
                                    f"may have at most {MAX_IMAGE_PIXELS:,} (4096×4096)")
                return image.convert(mode).resize(size, Image.BILINEAR).tobytes()
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot read the image ({err})")


# ── synthetic ─────────────────────────────────────────────────────────────────────────────────────────────────

def synthetic(shape: tuple[int, int, int], train: int = 2048, test: int = 512, classes: int = 10,
              seed: int = 1234) -> DataSet:
    """Learnable noise for smoke tests: each class is a fixed random pattern, each example that pattern mixed
    with fresh noise.  The same on every machine (its own generator)."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.rand((classes, *shape), generator=gen)

    def make(n: int):
        labels = torch.randint(0, classes, (n,), generator=gen)
        images = 0.6 * patterns[labels] + 0.4 * torch.rand((n, *shape), generator=gen)
        return (images * 255).round().to(torch.uint8), labels

    (train_x, train_y), (test_x, test_y) = make(train), make(test)
    return DataSet("synthetic", tuple(f"class{i}" for i in range(classes)), train_x, train_y, test_x, test_y)


# ── batches ───────────────────────────────────────────────────────────────────────────────────────────────────

def augment(x: torch.Tensor, names: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Train-time augmentation of a uint8 batch (B, C, H, W), vectorized, drawn from `gen` (on x's device)."""
    if "flip" in names:
        flip = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if "crop" in names:
        x = random_shift(x, 2, gen)
    return x


def random_shift(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Pads by `pad` zero pixels and crops back at a random offset per example (a shift of up to ±pad)."""
    batch, _, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)                       # (B, H+2p, W+2p, C)
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(height, device=x.device))[:, :, None]           # (B, H, 1)
    cols = (dx[:, None] + torch.arange(width, device=x.device))[:, None, :]            # (B, 1, W)
    picked = padded[torch.arange(batch, device=x.device)[:, None, None], rows, cols]  # (B, H, W, C)
    return picked.permute(0, 3, 1, 2)


def to_input(x: torch.Tensor, size: tuple[int, int] | None, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) → float in [0, 1], resized to `size` (bilinear) when it differs; float images (given
    from Python) are taken as they are."""
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=x.shape[-1] > size[-1])
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
