"""Shared CLI helpers: printing diagnostics and writing files atomically."""

from __future__ import annotations

import os

from nnspec.fileio import atomic_write  # noqa: F401  (re-exported for commands)


def use_color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def print_diagnostics(diagnostics, err) -> None:
    color = use_color(err)
    errors = sum(1 for d in diagnostics if d.severity == "error")
    for d in sorted(diagnostics):
        text = d.format()
        if color:
            first, _, rest = text.partition("\n")
            first = first.replace(": error:", ": \x1b[1;31merror:\x1b[0m", 1)
            first = first.replace(": warning:", ": \x1b[1;35mwarning:\x1b[0m", 1)
            text = first + ("\n" + rest if rest else "")
        print(text, file=err)
    if errors:
        print(f"{errors} error{'s' if errors != 1 else ''}", file=err)


def add_override_argument(p) -> None:
    """``--set PATH=VALUE`` (repeatable): change any value of the spec before it is checked."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="change a value of the spec, e.g. --set train.lr=0.01 --set 'encoder[2].filters=64' "
                        "(YAML values; repeatable; checked like the file)")


def add_backend_argument(p, help_text: str, default: str | None = None) -> None:
    """``--backend NAME`` with the registry's backends as choices (and ``--keras-backend`` for Keras's engine).

    Reads :mod:`nnspec.backends.base` only: no framework is imported to build the parser.
    """
    from nnspec.backends.base import infos

    known = infos()
    p.add_argument("--backend", choices=list(known), default=default, help=help_text)
    engines = [v.name for i in known.values() for v in i.variants]
    if engines:
        p.add_argument("--keras-backend", choices=engines, default=None, metavar="ENGINE",
                       help=f"the engine Keras runs on: {', '.join(engines)} (default: $KERAS_BACKEND or tensorflow)")
