"""`nnspec summary SPEC`: the Keras-style parameter table (or json/markdown)."""

from __future__ import annotations

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC")
    add_override_argument(p)
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    p.add_argument("--macs", action="store_true", help="add a multiply-accumulate column")
    p.add_argument("--memory", action="store_true", help="add an activation-size column (elements per example)")
    p.add_argument("--sections", action="store_true", help="group rows by section (encoder, decoder, head)")
    p.add_argument("--width", type=int, default=None, help="table width in characters")
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(p, "also build the real model and compare its counts with nnspec's")


def run(args, out, err) -> int:
    from nnspec.pipeline import load
    from nnspec.report import summary as sm

    spec = load(args.spec, overrides=args.overrides)
    s = sm.summarize(spec)
    if args.format == "json":
        print(sm.format_json(s), file=out)
    elif args.format == "markdown":
        print(sm.format_markdown(s, macs=args.macs, memory=args.memory, sections=args.sections), file=out)
    else:
        print(sm.format_table(s, macs=args.macs, memory=args.memory, sections=args.sections, width=args.width), file=out)
    if args.backend:
        from nnspec.backends.compare import compare_counts

        return compare_counts(spec, args.backend, out)
    return 0
