"""``inspect_run``: pictures of what a trained image classifier learned, and the facts behind them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from nnspec.inspect.errors import InspectError
from nnspec.inspect.filters import Filters, read_filters
from nnspec.inspect.run import InspectedRun, open_run


@dataclass
class Picture:
    """One PNG written: what it shows, from which layer, the shape behind it and how many cells it has."""

    kind: str  # "filters", "feature_maps", "misclassified" or "grad_cam"
    path: str
    layer: str | None
    shape: tuple | None
    cells: int
    note: str = ""


@dataclass
class InspectResult:
    """Everything ``inspect_run`` wrote and computed (the arrays let callers and tests check the pictures)."""

    run_dir: str
    spec_name: str
    trained_on: str
    weights: str
    out_dir: str
    backend: str | None = None  # the framework the model was built on; None when only filters were drawn
    pictures: list[Picture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    filters: Filters | None = None
    image_indices: np.ndarray | None = None  # test-set indices of the feature-map and Grad-CAM images
    image_labels: np.ndarray | None = None
    image_predictions: np.ndarray | None = None
    feature_layer: str | None = None
    feature_maps: np.ndarray | None = None  # (images, H, W, C)
    scanned: int = 0  # test images scored for the misclassified picture
    accuracy: float | None = None  # on those images
    misclassified_total: int = 0
    misclassified: np.ndarray | None = None  # test-set indices shown, most confident mistakes first
    misclassified_predictions: np.ndarray | None = None
    cam_layer: str | None = None
    cam_classes: np.ndarray | None = None
    cams: np.ndarray | None = None  # (images, H, W) at the input's size, each in [0, 1]

    def picture(self, kind: str) -> Picture | None:
        return next((p for p in self.pictures if p.kind == kind), None)


def _default_cam_layer(run: InspectedRun) -> str:
    """The last layer with a spatial output at or after the last convolution (its block's output)."""
    last_conv = run.conv_layers()[-1]
    names = list(run.spec.graph.nodes)
    spatial = [n for n in run.spatial_layers() if names.index(n) >= names.index(last_conv)]
    return spatial[-1] if spatial else last_conv


def pick_images(labels: np.ndarray, count: int) -> np.ndarray:
    """``count`` test indices, cycling through the classes in order (the first unused example of each)."""
    order: list[int] = []
    by_class = {int(c): list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    while len(order) < min(count, len(labels)):
        progressed = False
        for c in sorted(by_class):
            if by_class[c] and len(order) < count:
                order.append(int(by_class[c].pop(0)))
                progressed = True
        if not progressed:
            break
    return np.asarray(order, dtype=np.int64)


def spread_mistakes(index: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Mistakes ordered so one confusion cannot fill the picture: round by round, the most confident
    remaining mistake of each (true, predicted) pair, pairs ordered by that confidence."""
    ranked = np.argsort(-np.asarray(confidence), kind="stable")
    queues: dict[tuple[int, int], list[int]] = {}
    for i in ranked:
        queues.setdefault((int(true[i]), int(predicted[i])), []).append(int(i))
    order: list[int] = []
    depth = 0
    while len(order) < len(index):
        order += [q[depth] for q in queues.values() if depth < len(q)]
        depth += 1
    return np.asarray(index, dtype=np.int64)[order] if order else np.zeros(0, np.int64)


def _class_labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    return y.reshape(len(y)).astype(np.int64)


def _test_set(run: InspectedRun):
    from nnspec.data import DataError, load_data
    from nnspec.errors import SpecError

    s = run.settings
    try:
        splits = load_data(
            run.spec, limit=s.limit, seed=s.seed, validation_split=s.validation_split
        )
    except DataError as exc:
        raise InspectError(f"cannot load the run's data: {exc}") from None
    except SpecError as exc:
        first = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        raise InspectError(f"cannot load the run's data: {first}") from None
    if splits.test is None or not len(splits.test):
        raise InspectError(f"the data of spec `{run.spec.name}` has no test set: nothing to look at")
    x = splits.test.x[run.input_name] if isinstance(splits.test.x, dict) else splits.test.x
    y = splits.test.y[run.head] if isinstance(splits.test.y, dict) else splits.test.y
    return np.asarray(x, dtype=np.float32), _class_labels(y)


def inspect_run(
    run_dir: str,
    *,
    layer: str | None = None,
    filters_layer: str | None = None,
    cam_layer: str | None = None,
    images: int = 6,
    scan: int | None = 2000,
    misclassified: int = 24,
    channels: int = 16,
    backend: str | None = None,
    weights: str | None = None,
    out: str | None = None,
    grad_cam: bool = True,
) -> InspectResult:
    """Draw what a trained classification run learned; write PNGs to ``out`` (default ``RUN_DIR/inspect``).

    - ``filters_<layer>.png``: the learned kernels of ``filters_layer`` (default: the first conv
      layer), read from the run's weights file with numpy only.
    - ``feature_maps_<layer>.png``: the responses of ``layer`` (default: the first conv layer)
      to ``images`` test images, one of each class in turn.
    - ``misclassified.png``: up to ``misclassified`` wrongly classified images among the first
      ``scan`` test images (None: all), most confident mistakes first, true and predicted class.
    - ``grad_cam_<layer>.png``: Grad-CAM heat maps of the predicted class for the same images, at
      ``cam_layer`` (default: the output of the last convolution's block).

    The model is built on ``backend`` (default torch when installed, else keras) from the run's
    spec with its ``weights`` ("best" or "last"; default those the run was scored with).
    Raises :class:`InspectError` with one clear line when the run cannot be inspected.
    """
    from nnspec.backends.base import available
    from nnspec.backends.base import names as backend_names
    from nnspec.inspect import figures

    for name, value, least in (("images", images, 1), ("misclassified", misclassified, 0), ("channels", channels, 1)):
        if value < least:
            raise InspectError(f"--{name} must be at least {least} (got {value})")
    if scan is not None and scan < 1:
        raise InspectError(f"--scan must be at least 1 (got {scan})")
    if backend is not None and backend not in backend_names():
        raise InspectError(f"unknown backend `{backend}`; choose one of: {', '.join(backend_names())}")
    run = open_run(run_dir, weights)
    convs, spatial = run.conv_layers(), run.spatial_layers()
    filters_layer = run.layer(filters_layer, "filters", convs[0], convs, "is not a conv2d layer")
    layer = run.layer(layer, "feature maps", convs[0], spatial, "has no (height, width, channels) output")
    cam_layer = run.layer(
        cam_layer, "Grad-CAM", _default_cam_layer(run), spatial, "has no (height, width, channels) output"
    )
    if backend is None and not available():
        backend_missing = "neither torch nor keras is installed (pip install 'nnspec[torch]')"
    else:
        backend_missing = ""
        if backend is not None and backend not in available():
            from nnspec.backends import get_backend
            from nnspec.errors import BackendMissing

            try:
                get_backend(backend)
            except BackendMissing as exc:
                raise InspectError(str(exc)) from None

    out_dir = os.path.abspath(out or os.path.join(run.path, "inspect"))
    os.makedirs(out_dir, exist_ok=True)
    result = InspectResult(run.path, run.spec.name, run.trained_on, run.weights, out_dir)

    # (1) learned filters: numpy only
    filt = read_filters(run.weights_path, filters_layer)
    result.filters = filt
    path = os.path.join(out_dir, f"filters_{filters_layer}.png")
    kh, kw, cin, cout = filt.shape
    what = {"gray": "", "rgb": ", RGB", "channels": f", input channels 0-{filt.channels_shown - 1} of {cin} per row"}
    title = (
        f"{run.spec.name} · {filters_layer}: {cout} learned {kh}×{kw} filters{what[filt.mode]}\n"
        "red positive, blue negative, each filter scaled to its own largest weight"
    )
    cells = figures.filter_grid(filt, path, title)
    shown_note = f"{cells} cells" + (
        f" (first {cells // filt.channels_shown} of {cout} filters)"
        if filt.mode == "channels" and cells < cout * filt.channels_shown
        else ""
    )
    result.pictures.append(Picture("filters", path, filters_layer, filt.shape, cells, shown_note))
    if backend_missing:
        result.notes.append(f"feature maps, misclassified examples and Grad-CAM skipped: {backend_missing}")
        return result

    # (2)-(4) need the model on a framework
    from nnspec.inspect.model import open_runner

    runner = open_runner(run, backend)
    result.backend = runner.backend
    x, y = _test_set(run)
    names = run.class_names

    idx = pick_images(y, images)
    result.image_indices, result.image_labels = idx, y[idx]
    image_probs = runner.probabilities(x[idx])
    result.image_predictions = image_probs.argmax(axis=1)
    maps = runner.feature_maps(x[idx], layer)
    expected = (len(idx), *run.shape_of(layer))
    if tuple(maps.shape) != expected:  # a backend disagreeing with shape inference is a bug, said plainly
        raise RuntimeError(f"{layer}: {runner.backend} gave feature maps {tuple(maps.shape)}, nnspec infers {expected}")
    result.feature_layer, result.feature_maps = layer, maps
    path = os.path.join(out_dir, f"feature_maps_{layer}.png")
    shown = min(maps.shape[-1], channels)
    node = run.spec.graph.nodes[layer]
    title = (
        f"{run.spec.name} · responses of {layer} ({node.type}), output {run.shape_of(layer)}"
        + (f", channels 0-{shown - 1} of {maps.shape[-1]}" if shown < maps.shape[-1] else "")
        + "\nleft: input test image; each map scaled to its own range"
    )
    labels = [
        f"{names[t]}" + ("" if t == p else f"\n(pred {names[p]})")
        for t, p in zip(y[idx], result.image_predictions, strict=True)
    ]
    cells = figures.feature_map_grid(x[idx], maps, labels, path, title, max_channels=channels)
    result.pictures.append(
        Picture(
            "feature_maps",
            path,
            layer,
            run.shape_of(layer),
            cells,
            f"{len(idx)} images x {shown} of {maps.shape[-1]} channels",
        )
    )

    n_scan = len(x) if scan is None else min(scan, len(x))
    probs = runner.probabilities(x[:n_scan])
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y[:n_scan])
    order = spread_mistakes(wrong, y[wrong], pred[wrong], probs[wrong, pred[wrong]])[:misclassified]
    result.scanned, result.accuracy = n_scan, float((pred == y[:n_scan]).mean())
    result.misclassified_total = len(wrong)
    result.misclassified, result.misclassified_predictions = order, pred[order]
    path = os.path.join(out_dir, "misclassified.png")
    title = (
        f"{run.spec.name} · {len(wrong)} of {n_scan} test images misclassified "
        f"(accuracy {result.accuracy:.1%})\n{len(order)} shown: the most confident mistake of each "
        "confusion (true -> predicted) first, then the next of each"
    )
    cells = figures.misclassified_grid(
        x[order], [names[t] for t in y[order]], [names[p] for p in pred[order]], probs[order, pred[order]], path, title
    )
    result.pictures.append(
        Picture(
            "misclassified", path, None, None, cells, f"{len(wrong)} of {n_scan} wrong, accuracy {result.accuracy:.1%}"
        )
    )

    if grad_cam:
        classes = result.image_predictions
        cams, raw = runner.grad_cam(x[idx], cam_layer, classes)
        result.cam_layer, result.cam_classes, result.cams = cam_layer, classes, cams
        path = os.path.join(out_dir, f"grad_cam_{cam_layer}.png")
        title = (
            f"{run.spec.name} · Grad-CAM at {cam_layer}, output {run.shape_of(cam_layer)}, "
            f"for the predicted class\n(gradient of its {runner.scores.description}; "
            "each map scaled to its own maximum)"
        )
        labels = [
            f"true {names[t]}\npred {names[p]} ({pr:.0%})"
            for t, p, pr in zip(y[idx], classes, image_probs[np.arange(len(idx)), classes], strict=True)
        ]
        cells = figures.grad_cam_grid(x[idx], cams, labels, path, title)
        result.pictures.append(
            Picture(
                "grad_cam",
                path,
                cam_layer,
                run.shape_of(cam_layer),
                cells,
                f"{len(idx)} images, maps {raw.shape[1]}x{raw.shape[2]} upsampled to {cams.shape[1]}x{cams.shape[2]}",
            )
        )
    return result


def format_report(result: InspectResult) -> str:
    """The short text report of what was written."""
    built = f", built on {result.backend}" if result.backend else ""
    lines = [
        f"inspect {result.spec_name}: {result.run_dir}",
        f"  trained on {result.trained_on}, {result.weights} weights{built}",
    ]
    if result.image_indices is not None:
        n, right = len(result.image_indices), int(np.sum(np.asarray(result.image_predictions) == result.image_labels))
        lines.append(
            f"  {n} test images for feature maps and Grad-CAM (indices "
            f"{', '.join(map(str, result.image_indices[:8]))}{' ...' if n > 8 else ''}): {right} of {n} correct"
        )
    if result.accuracy is not None:
        lines.append(f"  accuracy on the first {result.scanned} test images: {result.accuracy:.1%}")
    labels = {
        "filters": "filters",
        "feature_maps": "feature maps",
        "misclassified": "misclassified",
        "grad_cam": "Grad-CAM",
    }
    rows = []
    for p in result.pictures:
        where = f"{p.layer} {p.shape}" if p.layer else ""
        rows.append((labels[p.kind], where, p.note, os.path.relpath(p.path) if not os.path.isabs(p.path) else p.path))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    for kind, where, note, path in rows:
        lines.append(f"  {kind:<{w0}}  {where:<{w1}}  {note:<{w2}}  -> {path}")
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)
