"""Array transforms in numpy: rotation, flips, translation, scaling, labels.

Images are channels-last batches ``(N, H, W, C)``. Angles are in degrees; a positive angle
turns the picture counter-clockwise as displayed (row 0 at the top), the convention of
``np.rot90`` with ``axes=(1, 2)``, PIL's ``Image.rotate`` and ``scipy.ndimage.rotate``:
``rotate(x, 90)`` equals ``np.rot90(x, 1, axes=(1, 2))``. Rotation samples bilinearly about the
image centre and fills uncovered corners with ``fill``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHUNK = 16  # images per rotation step: small temporaries are reused from the heap instead of fresh pages


def rotate(images: np.ndarray, angles, fill: float = 0.0) -> np.ndarray:
    """Rotate each image of an (N, H, W, C) float batch by its angle in degrees (counter-clockwise).

    ``angles`` is a number or an (N,) array. Returns a new float32 array of the same shape.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"rotate expects (N, H, W, C) images, got shape {x.shape}")
    n, h, w, _c = x.shape
    theta = np.deg2rad(np.broadcast_to(np.asarray(angles, dtype=np.float64), (n,)))
    out = np.empty_like(x)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64) - cy, np.arange(w, dtype=np.float64) - cx, indexing="ij")
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=fill)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        cos = np.cos(theta[start:stop])[:, None, None]
        sin = np.sin(theta[start:stop])[:, None, None]
        # snap values like cos(90 deg) = 6e-17 so right angles map pixel centres exactly
        cos = np.where(np.abs(cos) < 1e-12, 0.0, cos)
        sin = np.where(np.abs(sin) < 1e-12, 0.0, sin)
        # output pixel (r, c) reads the source at the inverse rotation; with "up" = -row,
        # counter-clockwise on screen is: src_col = cos*c - sin*r, src_row = sin*c + cos*r
        src_c = cos * cols - sin * rows + cx
        src_r = sin * cols + cos * rows + cy
        out[start:stop] = _bilinear(padded[start:stop], src_r, src_c, h, w)
    return out


def _bilinear(padded: np.ndarray, src_r: np.ndarray, src_c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sample (B, H+2, W+2, C) images (padded by one ``fill`` pixel) at (B, H, W) float coordinates."""
    b = padded.shape[0]
    # shift into padded coordinates and clamp: anything beyond the border reads the fill pixels
    r = np.clip(src_r + 1.0, 0.0, h + 1.0)
    c = np.clip(src_c + 1.0, 0.0, w + 1.0)
    r0 = np.minimum(np.floor(r).astype(np.intp), h)
    c0 = np.minimum(np.floor(c).astype(np.intp), w)
    fr = (r - r0).astype(np.float32)[..., None]
    fc = (c - c0).astype(np.float32)[..., None]
    hp, wp, ch = padded.shape[1:]
    flat = padded.reshape(b * hp * wp, ch)
    base = (np.arange(b, dtype=np.intp) * (hp * wp))[:, None, None] + r0 * wp + c0
    top = flat[base] * (1 - fc) + flat[base + 1] * fc
    bottom = flat[base + wp] * (1 - fc) + flat[base + wp + 1] * fc
    return top * (1 - fr) + bottom * fr


def translate(images: np.ndarray, shifts: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Shift each (H, W, C) image by whole pixels: ``shifts`` is (N, 2) of (down, right)."""
    x = np.asarray(images)
    out = np.full_like(x, fill)
    h, w = x.shape[1:3]
    shifts = np.asarray(shifts, dtype=np.intp).reshape(-1, 2)
    # few distinct shifts (at most (2k+1)^2): move every image sharing one in a single slice copy
    distinct, group = np.unique(shifts, axis=0, return_inverse=True)
    for g, (dy, dx) in enumerate(distinct):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        members = np.flatnonzero(group.reshape(-1) == g)
        src = x[members, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
        out[members, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src
    return out


def random_angles(rng: np.random.Generator, n: int, angle_range: float) -> np.ndarray:
    """(n,) float32 angles uniform in [-range, +range] degrees."""
    return rng.uniform(-angle_range, angle_range, size=n).astype(np.float32)


def make_image_augment(
    *,
    flip_horizontal: bool = False,
    flip_vertical: bool = False,
    translate_fraction: float = 0.0,
    rotate_range: float = 0.0,
    fill: float = 0.0,
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray] | None:
    """A function (images (N, H, W, C), rng) -> augmented copy, or None when nothing is asked."""
    if not (flip_horizontal or flip_vertical or translate_fraction or rotate_range):
        return None

    def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.array(images, dtype=np.float32, copy=True)
        n, h, w = x.shape[:3]
        if flip_horizontal:
            flip = rng.random(n) < 0.5
            x[flip] = x[flip][:, :, ::-1]
        if flip_vertical:
            flip = rng.random(n) < 0.5
            x[flip] = x[flip][:, ::-1]
        if translate_fraction:
            max_dy, max_dx = int(round(translate_fraction * h)), int(round(translate_fraction * w))
            shifts = np.stack([rng.integers(-max_dy, max_dy + 1, n), rng.integers(-max_dx, max_dx + 1, n)], axis=1)
            x = translate(x, shifts, fill)
        if rotate_range:
            x = rotate(x, random_angles(rng, n, rotate_range), fill)
        return x

    return augment


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) integer labels -> (N, num_classes) float32."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out
