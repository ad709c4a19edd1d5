"""Open a trained run for inspection: its spec, settings, weights file, image input and classes.

Every reason a run cannot be inspected is found here, before any framework is imported, and
reported as one :class:`InspectError` line.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnspec.choices import CATEGORICAL
from nnspec.inspect.errors import InspectError

if TYPE_CHECKING:
    from nnspec.pipeline import Spec
    from nnspec.training.settings import Settings
CONV_TYPES = ("conv2d",)


@dataclass
class InspectedRun:
    """What inspect needs to know about a run (no framework, no arrays)."""

    path: str
    spec: Spec
    settings: Settings
    weights_path: str
    weights: str  # "best" or "last"
    input_name: str
    input_shape: tuple[int, ...]
    head: str
    class_names: list[str]

    @property
    def trained_on(self) -> str:
        return self.settings.backend

    def shape_of(self, layer: str) -> tuple[int, ...]:
        """A layer's output shape per example (nnspec's inferred shape without the batch axis)."""
        return tuple(self.spec.analysis.nodes[layer].output_shape)[1:]

    def conv_layers(self) -> list[str]:
        """The spec's 2-D convolution layers, in graph order."""
        return [n.name for n in self.spec.graph.nodes.values() if n.type in CONV_TYPES]

    def spatial_layers(self) -> list[str]:
        """Layers whose output is an image-like (H, W, C) tensor, in graph order (inputs excluded)."""
        return [n.name for n in self.spec.graph.nodes.values() if not n.is_input and len(self.shape_of(n.name)) == 3]

    def layer(self, name: str | None, role: str, default: str, allowed: list[str], needs: str) -> str:
        """Resolve a user-given layer name (or the default) with a did-you-mean for unknown names."""
        if name is None:
            return default
        if name not in self.spec.graph.nodes:
            layers = [n for n in self.spec.graph.nodes if not self.spec.graph.nodes[n].is_input]
            close = _closest(name, layers)
            hint = (
                f"; did you mean {' or '.join(f'`{c}`' for c in close)}?"
                if close
                else f"; the layers are: {_listing(layers)}"
            )
            raise InspectError(f"spec `{self.spec.name}` has no layer `{name}`{hint}")
        if name not in allowed:
            node = self.spec.graph.nodes[name]
            raise InspectError(
                f"{role}: layer `{name}` ({node.type}, output {self.shape_of(name)}) {needs}; "
                f"choose one of: {_listing(allowed)}"
            )
        return name


def _closest(name: str, names: list[str]) -> list[str]:
    """The names most like ``name`` (all of those tied for best, at most three)."""
    scored = [(difflib.SequenceMatcher(None, name, n).ratio(), n) for n in names]
    best = max((r for r, _ in scored), default=0.0)
    if best < 0.6:
        return []
    return [n for r, n in scored if r == best][:3]


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def open_run(run_dir: str, weights: str | None = None) -> InspectedRun:
    """Check that ``run_dir`` is a finished single-model classification run on images, with weights."""
    from nnspec.errors import SpecError
    from nnspec.training.errors import TrainingError
    from nnspec.training.run import load_run_spec
    from nnspec.training.rundir import RunDir

    if not os.path.isdir(run_dir):
        raise InspectError(f"{run_dir}: no such run directory")
    try:
        run = RunDir.open(run_dir)
        settings = run.read_settings()
    except TrainingError as exc:
        raise InspectError(f"{exc} (give a directory written by `nnspec train`, runs/<spec>/<timestamp>)") from None
    except (OSError, ValueError) as exc:
        raise InspectError(f"{run_dir}: cannot read settings.json ({exc})") from None
    if settings.ensemble > 1:
        raise InspectError(f"{run_dir} is an ensemble; inspect one member: {run.file('members', '0')}")
    try:
        spec = load_run_spec(run, settings)
    except SpecError as exc:
        first = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        raise InspectError(f"{run.file('spec.yaml')}: the run's spec no longer loads ({first})") from None
    except OSError as exc:
        raise InspectError(f"{run_dir}: cannot read spec.yaml ({exc})") from None

    losses = settings.losses
    heads = list(spec.graph.heads)
    if len(heads) != 1:
        raise InspectError(
            f"spec `{spec.name}` has {len(heads)} heads ({', '.join(heads)}); "
            "inspect handles single-head classification runs"
        )
    head = heads[0]
    loss = losses[head].type if head in losses else spec.losses()[head]["type"]
    if settings.task != "classification" or loss not in CATEGORICAL:
        raise InspectError(
            f"{run_dir} is not a classification run (task {settings.task!r}, loss {loss!r}); "
            "inspect shows filters, feature maps and misclassified examples of image classifiers"
        )
    inputs = list(spec.graph.inputs)
    if len(inputs) != 1:
        raise InspectError(
            f"spec `{spec.name}` has {len(inputs)} inputs ({', '.join(inputs)}); "
            "inspect handles networks with one image input"
        )
    input_shape = tuple(spec.analysis.nodes[inputs[0]].output_shape)[1:]
    found = InspectedRun(run.path, spec, settings, "", "", inputs[0], input_shape, head, [])
    if not found.conv_layers():
        raise InspectError(f"spec `{spec.name}` has no conv2d layer: there are no filters or feature maps to show")
    if len(input_shape) != 3:
        raise InspectError(
            f"spec `{spec.name}`: input `{inputs[0]}` has shape {input_shape}; "
            "inspect needs an image input (height, width, channels)"
        )

    if weights is None:
        saved = run.read_json("metrics.json") if run.exists("metrics.json") else {}
        weights = saved.get("weights", "best") if saved.get("weights") in ("best", "last") else "best"
    if weights not in ("best", "last"):
        raise InspectError(f"weights must be `best` or `last` (got {weights!r})")
    path = run.weights_best if weights == "best" else run.weights_last
    if not os.path.isfile(path):
        other = run.weights_last if weights == "best" else run.weights_best
        hint = (
            f"; {os.path.relpath(other, run.path)} exists: use --weights {'last' if weights == 'best' else 'best'}"
            if os.path.isfile(other)
            else "; the run has not finished an epoch"
        )
        raise InspectError(f"{run_dir} has no {weights} weights ({os.path.relpath(path, run.path)} is missing){hint}")
    found.weights_path, found.weights = path, weights
    classes = list(settings.class_names or [])
    k = int(spec.analysis.nodes[spec.graph.heads[head]].output_shape[-1] or 0)
    found.class_names = [str(c) for c in classes] if len(classes) == k else [str(i) for i in range(k)]
    return found
