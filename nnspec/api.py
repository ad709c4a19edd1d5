"""The public API. The CLI only formats what these functions return."""

from __future__ import annotations

from collections.abc import Iterable

from nnspec.pipeline import Spec, check, load

__all__ = ["Spec", "build", "check", "inspect", "load", "render", "summarize", "train"]


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
