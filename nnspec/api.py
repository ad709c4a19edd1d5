"""The public API. The CLI only formats what these functions return."""

from __future__ import annotations

import os

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.spec import Spec


def load(spec, *, text: str | None = None) -> Spec:
    """Load, validate, expand and shape-check a spec (a path, YAML text via ``text=``, or a Spec).

    Raises :class:`nnspec.SpecError` whose ``.diagnostics`` lists every problem found.
    """
    if isinstance(spec, Spec):
        return spec
    from nnspec.analysis import analyze
    from nnspec.spec.expand import build_graph
    from nnspec.spec.loader import load_file, load_text

    if text is not None:
        src = load_text(text, file=str(spec) if spec else "<string>")
    else:
        src = load_file(os.fspath(spec))
    graph = build_graph(src)
    analysis = analyze(graph, src)
    return Spec(source=src, graph=graph, analysis=analysis, raw=src.data)


def check(spec, *, text: str | None = None) -> list[Diagnostic]:
    """Every problem in a spec, sorted by position; an empty list means it is valid."""
    try:
        load(spec, text=text)
    except SpecError as exc:
        return exc.diagnostics
    return []


def summarize(spec, **options):
    """Summary rows and totals (see :class:`nnspec.report.summary.Summary`)."""
    from nnspec.report.summary import summarize as _summarize

    return _summarize(load(spec), **options)


def render(spec, output: str | None = None, **options):
    """Build the DOT diagram of a spec; write it (and render with graphviz) when ``output`` is given."""
    from nnspec.report import diagram

    return diagram.render(load(spec), output, **options)


def build(spec, backend: str = "torch", **options):
    """Compile a spec to a framework model: ``torch.nn.Module`` or ``keras.Model``."""
    from nnspec.backends import get_backend

    return get_backend(backend).build(load(spec), **options)


def train(spec, backend: str = "torch", **options):
    """Train a spec on a backend; returns the run's result (see :mod:`nnspec.training`)."""
    from nnspec.training.run import train as _train

    return _train(load(spec), backend=backend, **options)


def inspect(run_dir, **options):
    """Pictures of what a trained run learned: filters, feature maps, mistakes, Grad-CAM."""
    from nnspec.inspect import inspect_run

    return inspect_run(str(run_dir), **options)
