"""The `nnspec` command line. Commands live one per module and are imported only when run.

Each command module defines ``HELP``, ``add_arguments(parser)`` and ``run(args, out, err) -> int``.
SpecError becomes located diagnostics on stderr and exit 1; nothing shows a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import warnings

# command -> (module, one-line help). The registry is explicit.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("nnspec.cli.check", "validate and shape-check specs; every problem at file:line:col"),
    "summary": ("nnspec.cli.summary", "print a Keras-style parameter summary"),
    "layers": ("nnspec.cli.layers", "list the layer catalog with attributes and defaults"),
    "schema": ("nnspec.cli.schema_cmd", "print the JSON Schema of specs (--path: where the installed file is)"),
    "docs": ("nnspec.cli.docs", "write the reference of every section, option and layer (docs/reference.md)"),
    "diff": ("nnspec.cli.diff", "show the layers, shapes, parameters and MACs that differ between two specs"),
    "resolve": ("nnspec.cli.resolve", "print a spec with blocks expanded and every default filled in"),
    "render": ("nnspec.cli.render", "draw a spec as a graphviz diagram (.svg, .png, .pdf, .dot)"),
    "train": ("nnspec.cli.train", "train a spec on torch or keras"),
    "sweep": ("nnspec.cli.sweep", "search hyper-parameters with Optuna; every trial is a run"),
    "runs": ("nnspec.cli.runs", "list and compare training runs (settings that differ, best and test metrics, time)"),
    "evaluate": ("nnspec.cli.evaluate", "re-score a trained run on the test set"),
    "predict": ("nnspec.cli.predict", "predict with a trained run"),
    "export": ("nnspec.cli.export", "export a model to onnx, torchscript or keras"),
    "inspect": ("nnspec.cli.inspect", "pictures of what a trained network learned"),
    "import": ("nnspec.cli.import_cmd", "turn a Keras model (.keras file or keras.applications.NAME) into a spec"),
}


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    from nnspec import __version__

    parser = argparse.ArgumentParser(prog="nnspec", description="Declarative neural networks: check, summarise, "
                                     "render, build and train YAML specs on PyTorch or Keras.")
    parser.add_argument("--version", action="version", version=f"nnspec {__version__}")
    parser.add_argument("--print-completion", metavar="SHELL", choices=["bash", "zsh", "fish"],
                        help="print a completion script for bash, zsh or fish (eval \"$(nnspec --print-completion bash)\")")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            try:
                importlib.import_module(module).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return parser


def main(argv: list[str] | None = None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = make_parser(command if command in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.print_completion:
        from nnspec.cli.completion import script

        out.write(script(args.print_completion, make_parser(), COMMANDS))
        return 0
    if not args.command:
        parser.print_help(out)
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    args.argv = argv  # the command line as given (`train --nproc` starts workers with it)
    from nnspec.errors import SpecError, UserError

    try:
        with warnings.catch_warnings():
            _plain_warnings(err)
            return int(module.run(args, out, err) or 0)
    except SpecError as exc:
        from nnspec.cli.common import print_diagnostics

        print_diagnostics(exc.diagnostics, err)
        return 1
    except UserError as exc:
        print(f"error: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:  # the file system said no: the user's problem to fix, said in one line
            where = f" {exc.filename}" if exc.filename else ""
            print(f"error: could not write{where}: {exc.strerror or exc}", file=err)
            return 1
        return _internal(exc, err)
    except Exception as exc:  # a bug in nnspec: say so in one line; NNSPEC_DEBUG=1 shows the traceback
        return _internal(exc, err)


_DISK_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def _internal(exc: Exception, err) -> int:
    """The safety net: a bug in nnspec, said in one line (NNSPEC_DEBUG=1 re-raises it with its traceback)."""
    import os

    if os.environ.get("NNSPEC_DEBUG"):
        raise exc
    print(f"internal error: {type(exc).__name__}: {exc} (this is a bug in nnspec; rerun with NNSPEC_DEBUG=1 "
          "and report it)", file=err)
    return 2


def _plain_warnings(err) -> None:
    """Show nnspec's own warnings (e.g. a broken layer plugin) as one `warning: ...` line, once each."""
    from nnspec.layers.registry import PluginWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"warning: {message}", file=err)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def entry() -> None:
    sys.exit(main())
