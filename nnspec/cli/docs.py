"""`nnspec docs`: write the reference (every section, option and layer) generated from the schema and catalog."""

from __future__ import annotations

DEFAULT_OUTPUT = "docs/reference.md"


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help=f"write the reference here (e.g. {DEFAULT_OUTPUT}) "
                   "instead of printing it")
    p.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from the reference nnspec would write")


def run(args, out, err) -> int:
    from nnspec.report.reference import GENERATED_BY, reference_markdown

    text = reference_markdown()
    if args.check:
        try:
            with open(args.check, encoding="utf-8") as fh:
                current = fh.read()
        except OSError as exc:
            print(f"error: cannot read {args.check}: {exc.strerror or exc}", file=err)
            return 1
        if current != text:
            print(f"{args.check} is stale: regenerate it with `{GENERATED_BY}`", file=err)
            return 1
        print(f"{args.check} is up to date", file=out)
        return 0
    if args.output:
        from nnspec.cli.common import atomic_write

        atomic_write(args.output, text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=err)
    else:
        out.write(text)
    return 0
