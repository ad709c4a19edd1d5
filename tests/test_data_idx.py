"""IDX parsing: the real Fashion-MNIST files, their checksums, and every header check."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from nnspec import SpecError
from nnspec.data import DataError, read_idx
from nnspec.data import fashion_mnist as fm
from nnspec.data.idx import decode_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def test_real_files_have_the_published_counts_shapes_and_labels(fashion_mnist_dir):
    x_train = read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz", ndim=3)
    y_train = read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz", ndim=1)
    x_test = read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")
    y_test = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert set(np.unique(y_train)) == set(range(10)) and y_test.min() == 0 and y_test.max() == 9
    assert np.bincount(y_train).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert x_train.max() == 255 and not x_train.flags.writeable


def test_installed_files_match_the_published_checksums(fashion_mnist_dir):
    assert fm.verify_dir(fashion_mnist_dir) == {name: None for name in fm.FILES}


def test_loader_returns_all_four_arrays_and_the_ten_class_names(fashion_mnist_dir):
    x, y, xt, yt = fm.load(dirs=[fashion_mnist_dir], allow_download=False)
    assert (len(x), len(y), len(xt), len(yt)) == (60000, 60000, 10000, 10000)
    assert fm.CLASS_NAMES[0] == "T-shirt/top" and fm.CLASS_NAMES[9] == "Ankle boot" and len(fm.CLASS_NAMES) == 10


def test_plain_and_gzip_files_read_the_same(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "plain").write_bytes(idx_bytes(a))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(a)))
    assert np.array_equal(read_idx(tmp_path / "plain"), a)
    assert np.array_equal(read_idx(tmp_path / "packed.gz"), a)


def test_big_endian_int32_values_are_decoded():
    a = np.array([1, -2, 70000], dtype=np.int32)
    decoded = decode_idx(idx_bytes(a, 0x0C))
    assert decoded.tolist() == [1, -2, 70000] and decoded.dtype == np.int32


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x08\x00" + b[2:], "bad IDX magic number 0x08000803"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad IDX magic number 0x00000703"),
        (lambda b: b[:3] + b"\x00" + b[4:], "bad IDX magic number 0x00000800"),
        (lambda b: b[:-1], "is truncated"),
        (lambda b: b + b"\x00", "has trailing bytes"),
        (lambda b: b[:10], "ends inside its IDX header"),
        (lambda b: b[:3], "too short for an IDX header"),
    ],
)
def test_header_damage_is_a_one_line_error_naming_the_file(tmp_path, mutate, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(mutate(idx_bytes(np.zeros((2, 3, 4), np.uint8))))
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert message in err.value.message
    assert "broken-idx3-ubyte" in str(err.value).splitlines()[0]
    assert isinstance(err.value, SpecError) and err.value.hint


def test_wrong_dimension_count_and_item_count_are_reported(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="1 dimension.* but 3 were expected"):
        read_idx(path, ndim=3)
    with pytest.raises(DataError, match="holds 5 items but 60,000 were expected"):
        read_idx(path, count=60000)


def test_damaged_gzip_is_reported(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
    packed[-6] ^= 0xFF  # break the CRC
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(path)


def test_a_file_that_is_not_the_published_one_is_refused(fashion_mnist_dir, tmp_path):
    for name in fm.FILES:
        if name != fm.TEST_LABELS:
            shutil.copy(fashion_mnist_dir / f"{name}.gz", tmp_path / f"{name}.gz")
    labels = np.array(read_idx(fashion_mnist_dir / f"{fm.TEST_LABELS}.gz"))
    labels[0] = (labels[0] + 1) % 10  # one wrong label: same structure, different content
    (tmp_path / fm.TEST_LABELS).write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="is not the published Fashion-MNIST") as err:
        fm.load(dirs=[tmp_path], cache=tmp_path, allow_download=False)
    assert "delete it" in err.value.hint
    assert fm.verify_dir(tmp_path)[fm.TEST_LABELS].startswith("content MD5")


def test_missing_files_with_downloads_off_name_the_fix(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        fm.locate(dirs=[tmp_path], cache=tmp_path / "cache", allow_download=False)
    assert "apt-get install dataset-fashion-mnist" in err.value.hint
