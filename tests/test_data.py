"""Data sets: IDX/CIFAR/folder readers, the search order, verified downloads (from local fakes only), batches."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import struct
import tarfile
import urllib.error
from pathlib import Path

import pytest
import torch

from netspec.train import data, datasets as sources
from netspec.train.datasets import DataError, RemoteFile, Source

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_images(images: torch.Tensor) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 2051, n, h, w) + bytes(images.flatten().tolist())


def idx_labels(labels: torch.Tensor) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + bytes(labels.tolist())


def fake_idx_files(folder: Path, n_train: int = 20, n_test: int = 10, compress: bool = True) -> dict[str, bytes]:
    """Writes the four Fashion-MNIST file names with small made-up contents; returns name → decompressed bytes."""
    gen = torch.Generator().manual_seed(0)
    raw = {
        "train-images-idx3-ubyte.gz": idx_images(torch.randint(0, 256, (n_train, 28, 28), generator=gen)),
        "train-labels-idx1-ubyte.gz": idx_labels(torch.arange(n_train) % 10),
        "t10k-images-idx3-ubyte.gz": idx_images(torch.randint(0, 256, (n_test, 28, 28), generator=gen)),
        "t10k-labels-idx1-ubyte.gz": idx_labels(torch.arange(n_test) % 10),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in raw.items():
        if compress:
            (folder / name).write_bytes(gzip.compress(content))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(content)
    return raw


def fake_source(raw: dict[str, bytes], base_url: str = "file:///nowhere", system_dir: str | None = None) -> Source:
    files = tuple(RemoteFile(name, hashlib.sha256(content).hexdigest()) for name, content in raw.items())
    return Source("fashion-mnist", "Fashion-MNIST", files, base_url, system_dir, "dataset-fashion-mnist")


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("NETSPEC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_an_idx_image_file_reads_as_n_by_h_by_w_uint8_gzipped_or_not(tmp_path):
    raw = fake_idx_files(tmp_path / "gz", n_train=7)
    fake_idx_files(tmp_path / "plain", n_train=7, compress=False)
    for path in (tmp_path / "gz" / "train-images-idx3-ubyte.gz", tmp_path / "plain" / "train-images-idx3-ubyte"):
        images = data.read_idx(path)
        assert images.shape == (7, 28, 28) and images.dtype == torch.uint8
        assert bytes(images.flatten().tolist()) == raw["train-images-idx3-ubyte.gz"][16:]
    assert data.read_idx(tmp_path / "gz" / "train-labels-idx1-ubyte.gz").tolist() == [0, 1, 2, 3, 4, 5, 6]


def test_a_truncated_idx_file_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_images(torch.zeros(3, 28, 28, dtype=torch.uint8))[:-5])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        data.read_idx(path)
    path.write_bytes(b"\x00\x00\x09\x99" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file"):
        data.read_idx(path)


def test_data_dir_is_searched_before_netspec_data_and_the_system_folder(tmp_path, monkeypatch, no_env):
    first, second, system = tmp_path / "first", tmp_path / "env", tmp_path / "system"
    raw = fake_idx_files(first)
    fake_idx_files(second)
    fake_idx_files(system)
    source = fake_source(raw, system_dir=str(system))
    monkeypatch.setenv("NETSPEC_DATA", str(second))
    assert set(p.parent for p in sources.find(source, str(first)).values()) == {first}
    assert set(p.parent for p in sources.find(source, None).values()) == {second}
    monkeypatch.delenv("NETSPEC_DATA")
    assert set(p.parent for p in sources.find(source, None).values()) == {system}


def test_netspec_data_may_hold_the_files_in_a_subfolder_named_after_the_data_set(tmp_path, monkeypatch, no_env):
    raw = fake_idx_files(tmp_path / "fashion-mnist")
    monkeypatch.setenv("NETSPEC_DATA", str(tmp_path))
    found = sources.find(fake_source(raw), None)
    assert found and all(p.parent == tmp_path / "fashion-mnist" for p in found.values())


def test_a_download_is_verified_on_the_decompressed_bytes_and_renamed_into_place(tmp_path, no_env):
    mirror = tmp_path / "mirror"
    raw = fake_idx_files(mirror)
    source = fake_source(raw, base_url=mirror.as_uri())
    paths = sources.locate(source, str(tmp_path / "data"))
    assert set(paths) == set(raw)
    for name, path in paths.items():
        assert path == tmp_path / "data" / "fashion-mnist" / name
        assert gzip.decompress(path.read_bytes()) == raw[name]
    assert not list((tmp_path / "data" / "fashion-mnist").glob(".*"))   # no temporary files left behind


def test_a_download_with_a_wrong_checksum_keeps_no_file_and_says_so(tmp_path, no_env):
    mirror = tmp_path / "mirror"
    raw = fake_idx_files(mirror)
    source = fake_source(raw, base_url=mirror.as_uri())
    bad = dataclasses.replace(source.files[0], digest="0" * 64)
    source = dataclasses.replace(source, files=(bad,) + source.files[1:])
    target = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch.*expected 0000"):
        sources.locate(source, str(target))
    assert not any(p.is_file() for p in target.rglob("*"))


def test_the_download_uses_urlopen_and_its_failure_names_the_fix(tmp_path, monkeypatch, no_env):
    calls = []

    def refuse(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(sources.urllib.request, "urlopen", refuse)
    source = dataclasses.replace(sources.FASHION_MNIST, system_dir=str(tmp_path / "absent"))
    with pytest.raises(DataError) as err:
        sources.locate(source, str(tmp_path / "empty"))
    message = str(err.value)
    assert calls and calls[0].startswith(sources.FASHION_MNIST.base_url)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert "no network in tests" in message and str(tmp_path / "absent") in message


def test_with_downloads_off_a_missing_data_set_is_reported_without_touching_the_network(tmp_path, monkeypatch,
                                                                                          no_env):
    monkeypatch.setattr(sources.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    source = dataclasses.replace(sources.FASHION_MNIST, system_dir=None)
    with pytest.raises(DataError, match="--no-download"):
        sources.locate(source, None, download=False)


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_the_installed_fashion_mnist_files_match_the_published_decompressed_checksums():
    for remote in sources.FASHION_MNIST.files:
        assert sources.digest_of(FASHION_DIR / remote.name, remote) == remote.digest


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_loads_as_whole_uint8_tensors_with_the_official_sizes():
    dataset = data.load_dataset("fashion-mnist", (1, 28, 28), download=False)
    assert dataset.train_x.shape == (60000, 1, 28, 28) and dataset.train_x.dtype == torch.uint8
    assert dataset.test_x.shape == (10000, 1, 28, 28) and dataset.test_y.dtype == torch.int64
    assert torch.bincount(dataset.train_y).tolist() == [6000] * 10
    assert dataset.classes[9] == "ankle boot"


def cifar_archive(path: Path, per_batch: int = 4) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for i, member in enumerate(data.CIFAR_MEMBERS):
            records = bytearray()
            for j in range(per_batch):
                records += bytes([(i + j) % 10]) + bytes([j] * 1024 + [100] * 1024 + [200] * 1024)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{member}")
            info.size = len(records)
            tar.addfile(info, io.BytesIO(bytes(records)))


def test_cifar10_is_read_from_the_binary_archive_without_extracting_or_unpickling(tmp_path, no_env):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    cifar_archive(folder / "cifar-10-binary.tar.gz")
    dataset = data.read_cifar10(str(tmp_path), download=False)
    assert dataset.train_x.shape == (20, 3, 32, 32) and dataset.test_x.shape == (4, 3, 32, 32)
    assert dataset.train_y[:4].tolist() == [0, 1, 2, 3] and dataset.test_y.tolist() == [5, 6, 7, 8]
    assert dataset.train_x[1, :, 0, 0].tolist() == [1, 100, 200]          # R, G, B planes in that order
    assert [p.name for p in folder.iterdir()] == ["cifar-10-binary.tar.gz"]


def test_an_image_folder_becomes_tensors_of_the_networks_input_shape(tmp_path):
    image = pytest.importorskip("PIL.Image")
    for split, count in (("train", 3), ("test", 1)):
        for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            (tmp_path / split / label).mkdir(parents=True)
            for k in range(count):
                image.new("RGB", (40, 30), colour).save(tmp_path / split / label / f"{k}.png")
    dataset = data.load_dataset(f"folder:{tmp_path}", (3, 16, 16))
    assert dataset.classes == ("cat", "dog")
    assert dataset.train_x.shape == (6, 3, 16, 16) and dataset.test_x.shape == (2, 3, 16, 16)
    assert dataset.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset.train_x[0, :, 8, 8].tolist() == [255, 0, 0] and dataset.train_x[3, :, 8, 8].tolist() == [0, 0, 255]


def test_a_folder_without_class_folders_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no class folders"):
        data.load_dataset(f"folder:{tmp_path}", (1, 8, 8))


def test_the_synthetic_set_is_the_same_every_time_and_shaped_like_the_input():
    a, b = data.synthetic((3, 8, 8)), data.synthetic((3, 8, 8))
    assert a.train_x.shape == (2048, 3, 8, 8) and torch.equal(a.train_x, b.train_x)
    assert torch.equal(a.test_y, b.test_y) and a.train_y.max() == 9


def test_flip_and_crop_keep_the_batch_shape_and_move_pixels_without_changing_them():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    gen = torch.Generator().manual_seed(0)
    out = data.augment(x, ("flip", "crop"), gen)
    assert out.shape == x.shape and out.dtype == torch.uint8
    shifted = data.random_shift(x, 2, torch.Generator().manual_seed(3))
    for b in range(2):   # a shift of (dy, dx): every nonzero pixel is one of the example's own values
        values = set(shifted[b].flatten().tolist()) - {0}
        assert values <= set(x[b].flatten().tolist())
    flipped = data.augment(x, ("flip",), torch.Generator().manual_seed(0))
    assert all(torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(2)) for b in range(2))


def test_to_input_scales_to_unit_range_and_resizes_on_the_device():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    out = data.to_input(x, (96, 96))
    assert out.shape == (2, 1, 96, 96) and out.dtype == torch.float32
    assert torch.allclose(out, torch.ones_like(out))
    assert data.to_input(x, (28, 28)).data_ptr() != x.data_ptr()


# ── files that claim more than they hold, and data that does not fit together ────────────────────────────────

def test_a_small_gzip_idx_file_that_claims_gigabytes_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 2_700_000, 28, 28) + bytes(1 << 20)))
    reads = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: reads.append(n) or real_read(self, n))
    with pytest.raises(DataError, match="claims 2,700,000 examples; this data set has at most 60,000"):
        data.read_idx(path, "images", 60_000, 28)
    assert reads == [4, 12]                                   # the header alone was read
    path.write_bytes(gzip.compress(struct.pack(">II", 2049, 300_000_000)))
    with pytest.raises(DataError, match="claims 300,000,000 bytes of data .* the limit is 268,435,456"):
        data.read_idx(path)                                   # no known shape: the general bound


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels (its data is missing: only the header is ever read)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [15_000, 5_000])   # past PIL's own bomb limit, and past only netspec's
def test_a_huge_image_in_a_folder_data_set_is_one_data_error(tmp_path, side):
    pytest.importorskip("PIL.Image")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "big.png").write_bytes(png_header(side, side))
    with pytest.raises(DataError, match=f"big.png: ({side}×{side} pixels; .* at most 16,777,216|cannot read)"):
        data.load_dataset(f"folder:{tmp_path}", (1, 8, 8))


def write_idx_set(folder: Path, train_x: bytes, train_y: bytes, test_x: bytes | None = None,
                  test_y: bytes | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train-images-idx3-ubyte.gz": train_x, "train-labels-idx1-ubyte.gz": train_y,
             "t10k-images-idx3-ubyte.gz": test_x or train_x, "t10k-labels-idx1-ubyte.gz": test_y or train_y}
    for name, content in files.items():
        (folder / name).write_bytes(gzip.compress(content))


def images_of(n: int) -> bytes:
    return idx_images(torch.zeros(n, 28, 28, dtype=torch.uint8))


BAD_SETS = {
    "label_past_the_classes": (images_of(4), idx_labels(torch.tensor([0, 1, 2, 12])),
                               "train label 12 is not one of its 10 classes"),
    "no_images": (images_of(0), idx_labels(torch.zeros(0, dtype=torch.long)), "holds no examples"),
    "truncated_header": (images_of(4)[:10], idx_labels(torch.zeros(4, dtype=torch.long)), "header is truncated"),
    "swapped": (idx_labels(torch.zeros(4, dtype=torch.long)), images_of(4), "are the image and label files swapped"),
    "more_images_than_labels": (images_of(64), idx_labels(torch.zeros(10, dtype=torch.long)),
                                "64 train images but 10 labels"),
    "images_of_another_size": (idx_images(torch.zeros(4, 32, 32, dtype=torch.uint8)),
                               idx_labels(torch.zeros(4, dtype=torch.long)), "images of 32×32 pixels"),
}


@pytest.mark.parametrize("case", BAD_SETS)
def test_idx_data_that_does_not_fit_together_is_one_data_error(tmp_path, no_env, case):
    images, labels, message = BAD_SETS[case]
    write_idx_set(tmp_path / "d", images, labels)
    with pytest.raises(DataError, match=message):
        data.load_dataset("fashion-mnist", (1, 28, 28), str(tmp_path / "d"), download=False)


def test_the_cli_shows_bad_data_as_one_line(tmp_path, no_env, capsys):
    from netspec.cli import main

    write_idx_set(tmp_path / "d", images_of(64), idx_labels(torch.zeros(10, dtype=torch.long)))
    assert main(["train", "lenet", "--data-dir", str(tmp_path / "d"), "--no-download", "--device", "cpu",
                 "--out", str(tmp_path / "runs")]) == 1
    assert capsys.readouterr().err == ("netspec: error: fashion-mnist: 64 train images but 10 labels; the image and "
                                       "label files do not belong together\n")


def test_a_folder_with_too_few_images_to_hold_any_out_is_refused(tmp_path):
    image = pytest.importorskip("PIL.Image")
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for k in range(3):
            image.new("L", (8, 8)).save(tmp_path / label / f"{k}.png")
    with pytest.raises(DataError, match="6 images are too few to hold out every 10th for testing"):
        data.load_dataset(f"folder:{tmp_path}", (1, 8, 8))
    (tmp_path / "train").mkdir()
    (tmp_path / "test" / "cat").mkdir(parents=True)         # a split whose test folders hold nothing
    (tmp_path / "cat").rename(tmp_path / "train" / "cat")
    with pytest.raises(DataError, match="no images"):
        data.load_dataset(f"folder:{tmp_path}", (1, 8, 8))


def test_a_cifar_batch_larger_than_ten_thousand_records_is_refused_unread(tmp_path, no_env):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for member in data.CIFAR_MEMBERS:
        with open(folder / member, "wb") as stream:
            stream.truncate(data.CIFAR_BATCH_BYTES + data.CIFAR_RECORD)   # sparse: no disk used
    with pytest.raises(DataError, match="a CIFAR-10 batch file holds at most 30,730,000"):
        data.read_cifar10(str(tmp_path), download=False)
