"""`nnspec schema`: print the JSON Schema of specs, or (--path) where the file installed with nnspec is."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", help="write to this file instead of printing")
    p.add_argument("--path", action="store_true",
                   help="print the path of the schema file installed with nnspec (for editor settings)")


def schema_path() -> str:
    """The JSON Schema file that ships inside the nnspec package (``nnspec/schemas/nnspec.schema.json``)."""
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas", "nnspec.schema.json")


def run(args, out, err) -> int:
    from nnspec.spec.schema import full_schema

    if args.path:
        import os

        path = schema_path()
        if not os.path.isfile(path):
            print(f"error: the schema file is missing from this installation ({path}); write one with "
                  "`nnspec schema -o nnspec.schema.json`", file=err)
            return 1
        print(path, file=out)
        return 0
    text = json.dumps(full_schema(), indent=2) + "\n"
    if args.output:
        import os

        from nnspec.cli.common import atomic_write

        # schemas/nnspec.schema.json links to the packaged file: write the file, keep the link
        atomic_write(os.path.realpath(args.output), text)
        print(f"wrote {args.output}", file=err)
    else:
        out.write(text)
    return 0
