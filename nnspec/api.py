"""The public API. The CLI only formats what these functions return."""

from __future__ import annotations

import os
from collections.abc import Iterable

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.spec import Spec


def load(spec, *, text: str | None = None, overrides: Iterable[str] = ()) -> Spec:
    """Load, validate, expand and shape-check a spec (a path, YAML text via ``text=``, or a Spec).

    ``overrides`` are ``PATH=VALUE`` strings (``"train.lr=0.01"``, ``"encoder[2].filters=64"``) applied to the
    file's data before validation; problems with them are reported against the override, not the file.
    Raises :class:`nnspec.SpecError` whose ``.diagnostics`` lists every problem found.
    """
    overrides = tuple(str(o) for o in overrides)
    if isinstance(spec, Spec):
        if not overrides:
            return spec
        return load(spec.path, text=spec.source.text, overrides=(*spec.overrides, *overrides))
    from nnspec.analysis import analyze
    from nnspec.spec.expand import build_graph
    from nnspec.spec.loader import load_file, load_text
    from nnspec.spec.overrides import apply_overrides

    if text is not None:
        src = load_text(text, file=str(spec) if spec else "<string>")
    else:
        src = load_file(os.fspath(spec))
    apply_overrides(src, overrides)
    graph = build_graph(src)
    analysis = analyze(graph, src)
    return Spec(source=src, graph=graph, analysis=analysis, raw=src.data, overrides=overrides)


def check(spec, *, text: str | None = None, overrides: Iterable[str] = ()) -> list[Diagnostic]:
    """Every problem in a spec, sorted by position; an empty list means it is valid."""
    try:
        load(spec, text=text, overrides=overrides)
    except SpecError as exc:
        return exc.diagnostics
    return []


def summarize(spec, *, overrides: Iterable[str] = (), **options):
    """Summary rows and totals (see :class:`nnspec.report.summary.Summary`)."""
    from nnspec.report.summary import summarize as _summarize

    return _summarize(load(spec, overrides=overrides), **options)


def render(spec, output: str | None = None, **options):
    """Build the DOT diagram of a spec; write it (and render with graphviz) when ``output`` is given."""
    from nnspec.report import diagram

    return diagram.render(load(spec), output, **options)


def build(spec, backend: str = "torch", *, overrides: Iterable[str] = (), **options):
    """Compile a spec to a framework model: ``torch.nn.Module`` or ``keras.Model``."""
    from nnspec.backends import get_backend

    return get_backend(backend).build(load(spec, overrides=overrides), **options)


def train(spec, backend: str = "torch", *, overrides: Iterable[str] = (), **options):
    """Train a spec on a backend; returns the run's result (see :mod:`nnspec.training`).

    ``overrides`` (``PATH=VALUE``) are applied before validation and recorded in the run directory.
    """
    from nnspec.training.run import train as _train

    return _train(load(spec, overrides=overrides) if spec is not None else None, backend=backend, **options)


def inspect(run_dir, **options):
    """Pictures of what a trained run learned: filters, feature maps, mistakes, Grad-CAM."""
    from nnspec.inspect import inspect_run

    return inspect_run(str(run_dir), **options)
