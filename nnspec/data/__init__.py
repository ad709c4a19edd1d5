"""Data for training: Fashion-MNIST and user files, split, transformed and shaped for a spec.

Pure numpy (Pillow, imported lazily, for image folders); never torch, tensorflow or keras.

The contract the training code relies on::

    splits = nnspec.data.load_data(spec, limit=None, seed=0, validation_split=None)

``spec`` is a loaded :class:`nnspec.pipeline.Spec` (or a path). The result is a :class:`DataSplits`:

- ``train``, ``val``, ``test``: :class:`ArraySet` with ``x`` and ``y``. ``val`` is None when the
  validation split is 0; ``test`` is None when the data has no test set and no ``test_split``.

  - ``x``: float32 ``(N, *input_shape)`` for a spec with one input (Fashion-MNIST becomes
    ``(N, 784)`` for a ``[784]`` input and ``(N, 28, 28, 1)`` for a ``[28, 28, 1]`` input);
    ``{input name: array}`` when the spec has several inputs.
  - ``y``: one array for one head, ``{head name: array}`` for several. Classification heads get
    int64 labels ``(N,)`` by default (``labels: auto`` or ``integer``; training turns them into
    one-hot when its loss needs it), float32 one-hot ``(N, C)`` with ``labels: one_hot``, and
    float32 ``(N, 1)`` 0/1 for ``binary_crossentropy`` with one unit. Regression heads get
    float32 ``(N, *head_shape)``; the rotation angle (degrees) is float32 ``(N, 1)``.

- ``task``: "classification", "regression", or "mixed" (heads of both kinds; see ``head_tasks``).
- ``num_classes``, ``class_names``: for classification (Fashion-MNIST's ten names), else None.
- ``augment(x, rng)``: a training batch (same structure as ``train.x``) and a
  ``numpy.random.Generator`` -> an augmented float32 copy; None when nothing is asked.
- ``head_tasks``, ``info`` (resolved settings for the run record), ``prepare(raw_x)`` (raw inputs,
  e.g. uint8 images, -> model inputs with the same scaling, normalisation and shape).

Settings (``data:`` in the spec): ``validation_split`` (argument > ``data`` > ``train`` > 0.1;
a seeded random subset of the first ``limit`` examples); ``test_split`` and ``test_limit``;
``scale`` (1/255 for uint8 data, else 1); ``normalize`` ({mean, std} or true for the training
split's own); ``rotate`` ({range, target, head}: angles uniform in [-range, +range] degrees,
counter-clockwise, the target of ``head``; with ``target: false`` rotation is augmentation);
``augment`` (flips, translation). The test split and the test set's rotations use a fixed seed,
so every run (and every ensemble member) is scored on the same examples.

Fashion-MNIST files are found in ``data.path``, ``/usr/share/datasets/fashion-mnist``,
``~/.keras/datasets/fashion-mnist`` or ``$NNSPEC_CACHE/datasets/fashion-mnist`` (default
``~/.cache/nnspec``), else downloaded (``$NNSPEC_FASHION_MNIST_URL`` overrides the mirror;
``$NNSPEC_OFFLINE=1`` forbids it) and checked against the published MD5s.
"""

from __future__ import annotations

from nnspec.data.errors import DataError
from nnspec.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from nnspec.data.idx import read_idx
from nnspec.data.load import ArraySet, DataSplits, load_data
from nnspec.data.transforms import rotate

__all__ = ["ArraySet", "DataError", "DataSplits", "FASHION_MNIST_CLASSES", "load_data", "read_idx", "rotate"]
