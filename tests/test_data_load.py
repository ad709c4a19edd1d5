"""load_data(spec): Fashion-MNIST and user files, shaped for the spec's inputs and heads."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.data import FASHION_MNIST_CLASSES, DataError, load_data, rotate
from tests.conftest import ROOT

CNN = """
name: tiny_cnn
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 2, kernel_size: 3, activation: relu}
  - flatten
head:
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
"""

DENSE_HEAD = """
name: tabular
inputs:
  x: {{shape: [{features}]}}
head:
  - dense: {{units: {units}, activation: {activation}}}
loss: {loss}
"""


def spec_with(write_spec, body: str, data: str, name: str = "spec.yaml"):
    return nnspec.load(write_spec(body + "data:\n" + data, name))


# ---------------------------------------------------------------- Fashion-MNIST


@pytest.mark.usefixtures("fashion_mnist_dir")
class TestFashionMnist:
    def test_dense_spec_gets_flattened_scaled_images_and_one_hot_labels(self):
        d = load_data(nnspec.load(ROOT / "specs/fashion_mnist_dense.yaml"), limit=1000)
        assert d.train.x.shape == (900, 784) and d.train.x.dtype == np.float32
        assert d.train.y.shape == (900, 10) and d.train.y.dtype == np.float32  # the spec asks labels: one_hot
        assert len(d.val) == 100 and len(d.test) == 10000
        assert 0.0 <= d.train.x.min() and d.train.x.max() <= 1.0 and d.train.x.max() > 0.9
        assert d.task == "classification" and d.num_classes == 10 and d.class_names == FASHION_MNIST_CLASSES
        assert d.augment is None

    def test_cnn_spec_gets_channels_last_images_and_integer_labels(self, write_spec):
        d = load_data(spec_with(write_spec, CNN, "  dataset: fashion_mnist\n  test_limit: 500\n"), limit=200)
        assert d.train.x.shape == (180, 28, 28, 1) and d.test.x.shape == (500, 28, 28, 1)
        assert d.train.y.dtype == np.int64 and d.train.y.shape == (180,) and d.train.y.max() <= 9

    def test_flattened_and_image_inputs_hold_the_same_pixels(self, write_spec):
        dense = load_data(nnspec.load(ROOT / "specs/fashion_mnist_dense.yaml"), limit=50)
        cnn = load_data(spec_with(write_spec, CNN, "  dataset: fashion_mnist\n"), limit=50)
        assert np.array_equal(dense.train.x, cnn.train.x.reshape(len(cnn.train.x), -1))

    def test_the_validation_split_is_seeded_and_repeatable(self, write_spec):
        spec = spec_with(write_spec, CNN, "  dataset: fashion_mnist\n")
        a, b = load_data(spec, limit=500, seed=3), load_data(spec, limit=500, seed=3)
        c = load_data(spec, limit=500, seed=4)
        assert np.array_equal(a.val.x, b.val.x) and np.array_equal(a.train.y, b.train.y)
        assert not np.array_equal(a.val.y, c.val.y)
        assert len(a.train) + len(a.val) == 500

    def test_validation_split_argument_overrides_the_spec_and_zero_means_none(self, write_spec):
        spec = spec_with(write_spec, CNN + "train: {validation_split: 0.2}\n", "  dataset: fashion_mnist\n")
        assert len(load_data(spec, limit=100).val) == 20
        assert len(load_data(spec, limit=100, validation_split=0.5).val) == 50
        none = load_data(spec, limit=100, validation_split=0.0)
        assert none.val is None and len(none.train) == 100

    def test_limit_takes_the_first_examples(self, write_spec):
        spec = spec_with(write_spec, CNN, "  dataset: fashion_mnist\n  limit: 30\n")
        d = load_data(spec, validation_split=0)
        more = load_data(spec, limit=60, validation_split=0)
        assert len(d.train) == 30 and np.array_equal(more.train.x[:30], d.train.x)

    def test_rotation_regression_targets_are_the_angles(self):
        d = load_data(nnspec.load(ROOT / "specs/rotation_regression_cnn.yaml"), limit=400)
        assert d.task == "regression" and d.num_classes is None
        y = d.train.y
        assert y.shape == (360, 1) and y.dtype == np.float32
        assert -45 <= y.min() < -30 and 30 < y.max() <= 45

    def test_rotated_images_differ_from_the_originals_by_their_angle(self, write_spec):
        rotated = load_data(nnspec.load(ROOT / "specs/rotation_regression_cnn.yaml"), limit=50)
        plain = load_data(spec_with(write_spec, CNN, "  dataset: fashion_mnist\n"), limit=50)
        again = rotate(plain.train.x, rotated.train.y[:, 0])
        assert np.allclose(again, rotated.train.x, atol=1e-6)

    def test_test_rotations_do_not_depend_on_the_training_seed(self):
        spec = nnspec.load(ROOT / "specs/rotation_regression_cnn.yaml")
        a, b = load_data(spec, limit=100, seed=0), load_data(spec, limit=100, seed=1)
        assert np.array_equal(a.test.y, b.test.y) and not np.array_equal(a.train.y, b.train.y)

    def test_two_heads_get_the_class_label_and_the_angle(self):
        d = load_data(nnspec.load(ROOT / "examples/two_head.yaml"), limit=100)
        assert set(d.train.y) == {"label", "angle"} and d.task == "mixed"
        assert d.train.y["label"].dtype == np.int64 and d.train.y["angle"].shape == (90, 1)
        assert d.head_tasks == {"label": "classification", "angle": "regression"}

    def test_augmentation_works_on_flattened_inputs(self, write_spec):
        text = (ROOT / "specs/fashion_mnist_dense.yaml").read_text()
        spec = nnspec.load(write_spec(text + "  augment: {flip_horizontal: true, translate: 0.1}\n"))
        d = load_data(spec, limit=64)
        out = d.augment(d.train.x, np.random.default_rng(0))
        assert out.shape == d.train.x.shape and out.dtype == np.float32 and not np.array_equal(out, d.train.x)

    def test_rotation_without_a_target_is_augmentation(self, write_spec):
        d = load_data(spec_with(write_spec, CNN, "  rotate: {range: 20, target: false}\n"), limit=40)
        assert d.task == "classification" and d.augment is not None
        assert d.augment(d.train.x, np.random.default_rng(1)).shape == d.train.x.shape

    def test_normalisation_from_the_training_split(self, write_spec):
        d = load_data(spec_with(write_spec, CNN, "  normalize: true\n"), limit=300)
        assert abs(float(d.train.x.mean())) < 1e-3 and abs(float(d.train.x.std()) - 1) < 1e-3
        assert d.info["mean"] > 0.2 and d.info["std"] > 0.2
        assert np.allclose(d.prepare(np.zeros((1, 28, 28), np.uint8)), -d.info["mean"] / d.info["std"])

    def test_an_input_of_the_wrong_size_is_a_located_error(self, write_spec):
        spec = spec_with(write_spec, CNN.replace("[28, 28, 1]", "[32, 32, 1]"), "  dataset: fashion_mnist\n")
        with pytest.raises(DataError, match=r"input 'img' expects shape \[32, 32, 1\] \(1,024 values\)") as err:
            load_data(spec, limit=10)
        assert err.value.diagnostics[0].line == 4 and "[28, 28, 1]" in err.value.hint

    def test_a_head_with_the_wrong_number_of_classes_is_an_error(self, write_spec):
        spec = spec_with(write_spec, CNN.replace("units: 10", "units: 5"), "  dataset: fashion_mnist\n")
        with pytest.raises(DataError, match="outputs 5 values but the data has 10 classes"):
            load_data(spec, limit=10)


def test_a_spec_without_data_says_how_to_add_it(write_spec):
    with pytest.raises(DataError, match="no data: section") as err:
        load_data(nnspec.load(write_spec(CNN)))
    assert "fashion_mnist" in err.value.hint


# ---------------------------------------------------------------- npz


def test_npz_with_a_test_set_and_uint8_images(write_spec, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y=rng.integers(0, 10, 50),
        x_test=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 8),
    )
    d = load_data(spec_with(write_spec, CNN, "  dataset: npz\n  path: d.npz\n"))
    assert d.train.x.shape == (45, 28, 28, 1) and d.test.x.shape == (8, 28, 28, 1)
    assert d.train.x.max() <= 1.0 and d.num_classes == 10


def test_npz_named_arrays_separate_test_file_and_regression(write_spec, tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "train.npz", feats=rng.random((40, 6)), price=rng.random(40))
    np.savez(tmp_path / "test.npz", feats=rng.random((10, 6)), price=rng.random(10))
    body = DENSE_HEAD.format(features=6, units=1, activation="linear", loss="mse")
    d = load_data(
        spec_with(write_spec, body, "  path: train.npz\n  test_path: test.npz\n  features: feats\n  target: price\n")
    )
    assert d.task == "regression" and d.train.y.shape == (36, 1) and d.train.y.dtype == np.float32
    assert d.test.x.shape == (10, 6) and d.info["scale"] == 1.0


def test_npz_several_inputs_map_to_arrays(write_spec, tmp_path):
    rng = np.random.default_rng(2)
    np.savez(
        tmp_path / "two.npz", images=rng.random((20, 28, 28, 1)), meta=rng.random((20, 8)), y=rng.integers(0, 10, 20)
    )
    spec = nnspec.load(
        write_spec(
            (ROOT / "examples/two_input.yaml").read_text()
            + "data: {path: two.npz, features: {img: images, meta: meta}}\n"
        )
    )
    d = load_data(spec, validation_split=0.25)
    assert d.train.x["img"].shape == (15, 28, 28, 1) and d.train.x["meta"].shape == (15, 8)


def test_npz_missing_array_names_what_is_there(write_spec, tmp_path):
    np.savez(tmp_path / "d.npz", a=np.zeros((3, 2)), y=np.zeros(3))
    body = DENSE_HEAD.format(features=2, units=1, activation="linear", loss="mse")
    with pytest.raises(DataError, match="has no array 'x'") as err:
        load_data(spec_with(write_spec, body, "  path: d.npz\n"))
    assert "it has: a, y" in err.value.hint


def test_npz_arrays_of_different_lengths_are_refused(write_spec, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.zeros(4))
    body = DENSE_HEAD.format(features=2, units=1, activation="linear", loss="mse")
    with pytest.raises(DataError, match="disagree on the number of examples"):
        load_data(spec_with(write_spec, body, "  path: d.npz\n"))


# ---------------------------------------------------------------- csv


def test_csv_string_labels_become_integers_with_names(write_spec, tmp_path):
    rows = ["a,b,target"] + [f"{i},{i * 2},{['cat', 'dog', 'bird'][i % 3]}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "test.csv").write_text("a,b,target\n1,2,dog\n3,4,bird\n")
    body = DENSE_HEAD.format(features=2, units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    d = load_data(spec_with(write_spec, body, "  path: t.csv\n  test_path: test.csv\n  validation_split: 0\n"))
    assert d.class_names == ("bird", "cat", "dog") and d.num_classes == 3
    assert d.train.y[:3].tolist() == [1, 2, 0] and d.test.y.tolist() == [2, 0]
    assert d.train.x[1].tolist() == [1.0, 2.0]


def test_csv_test_split_is_fixed_and_numeric_targets_work(write_spec, tmp_path):
    rows = ["x1,x2,label"] + [f"{i},{-i},{i % 2}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    body = DENSE_HEAD.format(features=2, units=1, activation="sigmoid", loss="binary_crossentropy")
    spec = spec_with(write_spec, body, "  path: t.csv\n  target: label\n  test_split: 0.25\n")
    a, b = load_data(spec, seed=0), load_data(spec, seed=9)
    assert len(a.test) == 10 and np.array_equal(a.test.x, b.test.x)
    assert a.train.y.shape == (27, 1) and a.train.y.dtype == np.float32 and set(np.unique(a.train.y)) == {0.0, 1.0}


def test_csv_problems_name_the_row_and_column(write_spec, tmp_path):
    (tmp_path / "t.csv").write_text("a,b,target\n1,2,x\n3,oops,y\n")
    body = DENSE_HEAD.format(features=2, units=2, activation="softmax", loss="categorical_crossentropy")
    with pytest.raises(DataError, match="row 3, column 'b': 'oops' is not a number"):
        load_data(spec_with(write_spec, body, "  path: t.csv\n"))
    (tmp_path / "u.csv").write_text("a,b,kind\n1,2,x\n")
    with pytest.raises(DataError, match="has no column 'target'") as err:
        load_data(spec_with(write_spec, body, "  path: u.csv\n", "u.yaml"))
    assert "columns: a, b, kind" in err.value.hint


# ---------------------------------------------------------------- image folders


def _write_images(root, classes: dict[str, int], size=(20, 16), mode="RGB"):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (size[0], size[1], 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.{'png' if i % 2 else 'jpg'}"
            )


def test_image_folder_resizes_to_the_input_and_converts_to_grayscale(write_spec, tmp_path):
    _write_images(tmp_path / "imgs", {"boots": 6, "shirts": 4})
    _write_images(tmp_path / "test", {"boots": 1, "shirts": 2})
    body = CNN.replace("units: 10", "units: 2")
    d = load_data(spec_with(write_spec, body, "  path: imgs\n  test_path: test\n  validation_split: 0\n"))
    assert d.train.x.shape == (10, 28, 28, 1) and d.class_names == ("boots", "shirts")
    assert d.train.y.tolist() == [0] * 6 + [1] * 4 and d.test.y.tolist() == [0, 1, 1]
    assert 0 <= d.train.x.min() and d.train.x.max() <= 1


def test_image_folder_rgb_input_and_explicit_image_size(write_spec, tmp_path):
    _write_images(tmp_path / "imgs", {"a": 2, "b": 2}, mode="L")
    body = (
        CNN.replace("[28, 28, 1]", "[768]")
        .replace("- conv2d: {filters: 2, kernel_size: 3, activation: relu}\n  ", "")
        .replace("units: 10", "units: 2")
    )
    d = load_data(
        spec_with(
            write_spec, body, "  dataset: image_folder\n  path: imgs\n  image_size: [16, 16]\n  validation_split: 0\n"
        )
    )
    assert d.train.x.shape == (4, 768)  # 16 x 16 x 3: RGB because 768 = 16 * 16 * 3


def test_an_unreadable_image_is_named(write_spec, tmp_path):
    _write_images(tmp_path / "imgs", {"a": 1, "b": 1})
    (tmp_path / "imgs" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_data(spec_with(write_spec, CNN.replace("units: 10", "units: 2"), "  path: imgs\n"))


def test_loading_data_imports_no_framework(write_spec, tmp_path):
    import subprocess
    import sys

    (tmp_path / "t.csv").write_text("a,b,target\n1,2,x\n3,4,y\n5,6,x\n")
    path = write_spec(
        DENSE_HEAD.format(features=2, units=2, activation="softmax", loss="categorical_crossentropy")
        + "data: {path: t.csv}\n"
    )
    code = (
        "import sys, nnspec; from nnspec.data import load_data; d = load_data(nnspec.load(sys.argv[1]));"
        "assert len(d.train) == 2, d; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')))"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
