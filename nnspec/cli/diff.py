"""`nnspec diff A B`: layers, shapes, parameters and MACs that changed between two specs."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("before", metavar="A")
    p.add_argument("after", metavar="B")


def run(args, out, err) -> int:
    from nnspec.pipeline import load
    from nnspec.report.diff import diff, format_diff
    from nnspec.report.summary import summarize

    a, b = summarize(load(args.before)), summarize(load(args.after))
    changes = diff(a, b)
    print(format_diff(a, b, changes), file=out)
    return 0
