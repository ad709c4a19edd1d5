"""`nnspec diff A B`: layers (matched by structure), settings, parameters and MACs that differ.

Exit 0 when the specs are equal, 1 when they differ (as `diff` does); errors exit 1 too, on stderr.
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("before", metavar="A")
    p.add_argument("after", metavar="B")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")


def run(args, out, err) -> int:
    from nnspec.pipeline import load
    from nnspec.report.diff import diff_specs

    result = diff_specs(load(args.before), load(args.after))
    if args.format == "json":
        from nnspec.report.diff import format_json

        print(format_json(result), file=out)
    else:
        from nnspec.report.diff import format_text

        print(format_text(result), file=out)
    return 0 if result.equal else 1
