"""`nnspec schema`: print the JSON Schema (the committed schemas/nnspec.schema.json)."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", help="write to this file instead of printing")


def run(args, out, err) -> int:
    from nnspec.spec.schema import full_schema

    text = json.dumps(full_schema(), indent=2) + "\n"
    if args.output:
        from nnspec.cli.common import atomic_write

        atomic_write(args.output, text)
        print(f"wrote {args.output}", file=err)
    else:
        out.write(text)
    return 0
