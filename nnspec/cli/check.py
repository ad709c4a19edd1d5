"""`nnspec check SPEC...`: validate, shape-check and lint.

Exit 1 when any spec has errors; warnings alone exit 0, unless ``--strict``.
"""

from __future__ import annotations

import json

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("specs", nargs="*", metavar="SPEC", help="spec files")
    add_override_argument(p)
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings too")
    p.add_argument("--no-warnings", action="store_true", help="skip the lint (errors only)")
    p.add_argument("--list-warnings", action="store_true",
                   help="list the warning codes, what each flags and its fix, then exit")


def run(args, out, err) -> int:
    from nnspec.cli.common import print_diagnostics
    from nnspec.errors import SpecError
    from nnspec.lint import lint
    from nnspec.pipeline import load

    if args.list_warnings:
        print(list_warnings(), file=out)
        return 0
    if not args.specs:
        print("error: give one or more SPEC files to check (or --list-warnings)", file=err)
        return 2
    failed = warned = 0
    results = []
    for path in args.specs:
        try:
            spec = load(path, overrides=args.overrides)
        except SpecError as exc:
            failed += 1
            if args.format == "json":
                results.append({"file": path, "ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]})
            else:
                print_diagnostics(exc.diagnostics, err)
            continue
        warnings = [] if args.no_warnings else lint(spec)
        warned += bool(warnings)
        if args.format == "json":
            results.append({"file": path, "ok": True, "total_params": spec.total_params,
                            "layers": len(spec.graph.nodes), "diagnostics": [d.to_dict() for d in warnings]})
            continue
        if warnings:
            print_diagnostics(warnings, err)
        if not args.quiet:
            shapes = spec.analysis.output_shapes()
            outs = ", ".join(_shape(s) if h == "output" else f"{h} {_shape(s)}" for h, s in shapes.items())
            note = f" ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else ""
            print(f"{path}: ok{note} — {spec.name}: {len(spec.graph.nodes)} layers, "
                  f"{spec.total_params:,} parameters, output {outs}", file=out)
    if args.format == "json":
        print(json.dumps(results, indent=2), file=out)
    return 1 if failed or (args.strict and warned) else 0


def list_warnings() -> str:
    """The warning registry as a table: code, what it flags, the usual fix."""
    from nnspec.lint import WARNINGS

    width = max(len(c) for c in WARNINGS)
    lines = [f"{'code':<{width}}  what / fix"]
    for code, w in WARNINGS.items():
        lines.append(f"{code:<{width}}  {w.what}")
        lines.append(f"{'':<{width}}  fix: {w.fix}")
    lines.append("silence one on its line with `# nnspec: ignore[code]`; `nnspec check --strict` fails on warnings")
    return "\n".join(lines)


def _shape(s) -> str:
    from nnspec.layers.base import format_shape

    return format_shape(s)
