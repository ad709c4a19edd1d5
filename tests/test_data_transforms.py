"""Rotation, flips, translation and the augmentation function, in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.data import rotate
from nnspec.data.transforms import make_image_augment, one_hot, translate


@pytest.fixture
def images():
    return np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)


def test_rotating_by_zero_is_the_identity(images):
    assert np.array_equal(rotate(images, 0.0), images)


@pytest.mark.parametrize("angle, k", [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_right_angles_match_rot90_counter_clockwise(images, angle, k):
    assert np.allclose(rotate(images, angle), np.rot90(images, k, axes=(1, 2)), atol=1e-5)


def test_odd_sizes_and_several_channels_rotate_too():
    x = np.random.default_rng(1).random((2, 7, 7, 3)).astype(np.float32)
    assert np.allclose(rotate(x, 90), np.rot90(x, 1, axes=(1, 2)), atol=1e-5)


def test_each_image_gets_its_own_angle(images):
    out = rotate(images, np.array([0, 90, 180, -90]))
    assert np.array_equal(out[0], images[0])
    assert np.allclose(out[1], np.rot90(images[1], 1), atol=1e-5)
    assert np.allclose(out[3], np.rot90(images[3], -1), atol=1e-5)


def test_rotation_agrees_with_pillow_away_from_the_border():
    Image = pytest.importorskip("PIL.Image")
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 11:17] = 200  # a bar: its direction shows the sense of rotation
    ours = rotate(img[None, ..., None].astype(np.float32), 30)[0, ..., 0]
    theirs = np.asarray(Image.fromarray(img).rotate(30, resample=Image.BILINEAR), dtype=np.float32)
    assert np.abs(ours - theirs)[3:-3, 3:-3].mean() < 2.0


def test_corners_are_filled_and_values_stay_in_range(images):
    out = rotate(images, 45, fill=-1.0)
    assert out[0, 0, 0, 0] == -1.0 and out.dtype == np.float32
    assert out.max() <= 1.0 + 1e-6


def test_translate_shifts_whole_pixels_and_fills():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    out = translate(x, np.array([[1, -1]]), fill=-5)
    assert out[0, 0, :, 0].tolist() == [-5, -5, -5, -5]
    assert out[0, 1:, :3, 0].tolist() == x[0, :3, 1:, 0].tolist()
    assert out[0, :, 3, 0].tolist() == [-5, -5, -5, -5]


def test_augmentation_keeps_shapes_and_is_repeatable_with_the_same_generator(images):
    fn = make_image_augment(flip_horizontal=True, flip_vertical=True, translate_fraction=0.1, rotate_range=15)
    a = fn(images, np.random.default_rng(5))
    b = fn(images, np.random.default_rng(5))
    c = fn(images, np.random.default_rng(6))
    assert a.shape == images.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.shares_memory(a, images)


def test_horizontal_flips_only_mirror_columns():
    x = np.random.default_rng(2).random((64, 5, 5, 1)).astype(np.float32)
    out = make_image_augment(flip_horizontal=True)(x, np.random.default_rng(0))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 10 < sum(flipped) < 54


def test_no_augmentation_asked_gives_none():
    assert make_image_augment() is None


def test_one_hot():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
