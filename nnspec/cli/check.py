"""`nnspec check SPEC...`: validate and shape-check; exit 1 when any spec has errors."""

from __future__ import annotations

import json

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files")
    add_override_argument(p)
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")


def run(args, out, err) -> int:
    from nnspec.cli.common import print_diagnostics
    from nnspec.errors import SpecError
    from nnspec.pipeline import load

    failed = 0
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
        if args.format == "json":
            results.append({"file": path, "ok": True, "total_params": spec.total_params,
                            "layers": len(spec.graph.nodes), "diagnostics": []})
        elif not args.quiet:
            shapes = spec.analysis.output_shapes()
            outs = ", ".join(_shape(s) if h == "output" else f"{h} {_shape(s)}" for h, s in shapes.items())
            print(f"{path}: ok — {spec.name}: {len(spec.graph.nodes)} layers, "
                  f"{spec.total_params:,} parameters, output {outs}", file=out)
    if args.format == "json":
        print(json.dumps(results, indent=2), file=out)
    return 1 if failed else 0


def _shape(s) -> str:
    from nnspec.layers.base import format_shape

    return format_shape(s)
