"""`nnspec render SPEC -o OUT`: draw a spec as a graphviz diagram (.svg, .png, .pdf or .dot)."""

from __future__ import annotations

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC")
    add_override_argument(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help="file to write; the extension picks the format (.svg, .png, .pdf, .dot). "
                        "Without it the DOT text is printed")
    p.add_argument("--level", choices=["layers", "blocks"], default="layers",
                   help="layers: one node per layer (default); blocks: one box per section")
    p.add_argument("--expand", action="store_true",
                   help="draw every repetition of repeated blocks and every layer of long chains")
    p.add_argument("--rankdir", choices=["TB", "LR"], default="TB", help="top-to-bottom (default) or left-to-right")
    p.add_argument("--max-nodes", type=int, default=None, metavar="N",
                   help="fold long chains of layers when more than N nodes would be drawn (default 80)")


def run(args, out, err) -> int:
    from nnspec.pipeline import load
    from nnspec.report import diagram

    options = {"level": args.level, "expand": args.expand, "rankdir": args.rankdir}
    if args.max_nodes is not None:
        options["max_nodes"] = args.max_nodes
    if args.output:
        diagram.output_format(args.output)
    spec = load(args.spec, overrides=args.overrides)
    dot_text = diagram.render(spec, args.output, **options)
    if args.output:
        drawn = len([line for line in dot_text.splitlines() if "->" in line])
        print(f"wrote {args.output} ({spec.name}: {len(spec.graph.nodes)} layers, {drawn} edges drawn, "
              f"level {args.level})", file=out)
    else:
        out.write(dot_text)
    return 0
