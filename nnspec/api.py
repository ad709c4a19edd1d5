"""The public API. The CLI only formats what these functions return."""

from __future__ import annotations

import os
from collections.abc import Iterable

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError
from nnspec.pipeline import Spec, load
from nnspec.pipeline import check as _check

__all__ = ["Spec", "build", "check", "diff", "import_keras", "inspect", "lint", "load", "render", "summarize", "train"]


def check(spec: str | os.PathLike[str] | Spec | None, *, text: str | None = None, overrides: Iterable[str] = (),
          warnings: bool = False) -> list[Diagnostic]:
    """Every problem in a spec, sorted by position; an empty list means it is valid.

    With ``warnings=True`` a valid spec is also linted, and its warnings (``severity == "warning"``) are returned.
    """
    if not warnings:
        return _check(spec, text=text, overrides=overrides)
    try:
        return lint(spec, text=text, overrides=overrides)
    except SpecError as exc:
        return exc.diagnostics


def lint(spec, *, text: str | None = None, overrides: Iterable[str] = ()) -> list[Diagnostic]:
    """Warnings for a valid spec (loss vs head, redundant biases, ...), sorted by position.

    Raises :class:`nnspec.SpecError` when the spec has errors; ``nnspec check --list-warnings`` lists the codes.
    (From the top level, ``nnspec.check(spec, warnings=True)``: ``nnspec.lint`` is the package of rules.)
    """
    from nnspec.lint import lint as _lint

    return _lint(load(spec, text=text, overrides=overrides))


def summarize(spec, *, overrides: Iterable[str] = (), **options):
    """Summary rows and totals (see :class:`nnspec.report.summary.Summary`)."""
    from nnspec.report.summary import summarize as _summarize

    return _summarize(load(spec, overrides=overrides), **options)


def diff(before, after):
    """What differs between two specs: layers matched by structure, settings, totals.

    Returns a :class:`nnspec.report.diff.SpecDiff` (``.equal``, ``.layers``, ``.settings``, ``.totals``).
    """
    from nnspec.report.diff import diff_specs

    return diff_specs(load(before), load(after))


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


def import_keras(model, name: str | None = None, blocks: bool = True):
    """A Keras model (a built model, a ``.keras`` path or ``"keras.applications.NAME"``) as a spec.

    Runs of repeated layers are written once, as blocks used with ``repeat:`` (``blocks=False``: every
    layer listed); either way the spec builds the same model.

    Returns ``(imported, spec, weights)``: ``imported.text`` is the YAML, ``imported.notes`` what was
    approximated, ``spec`` the loaded spec and ``weights`` its neutral weights (``"layer/param"``).
    """
    from nnspec.backends.base import get_backend

    get_backend("keras")  # a missing Keras is one clear line
    from nnspec.backends.keras.importer import import_keras as _import

    return _import(model, name, blocks=blocks)
