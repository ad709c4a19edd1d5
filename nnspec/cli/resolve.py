"""`nnspec resolve SPEC`: the spec with blocks expanded, names given and defaults filled.

Conditions (`when:`) and expressions are already applied; a layer from a block says which
block use it came from (instance label, repeat_index, block_index).
"""

from __future__ import annotations

from typing import Any

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC")
    add_override_argument(p)


def run(args, out, err) -> int:
    import yaml

    from nnspec.pipeline import load

    spec = load(args.spec, overrides=args.overrides)
    g = spec.graph
    doc: dict[str, Any] = {"name": g.name, "inputs": {}, "layers": []}
    for node in g.nodes.values():
        if node.is_input:
            doc["inputs"][node.name] = dict(node.attrs)
            continue
        attrs = {"name": node.name, "inputs": list(node.inputs), **node.attrs}
        if not node.trainable:
            attrs["trainable"] = False
        if node.block:
            attrs["block"] = {"use": node.block_name, "instance": node.block, "repeat_index": node.repeat,
                              "block_index": node.block_index}
        doc["layers"].append({node.type: attrs, })
    doc["outputs"] = dict(g.heads)
    for key in ("loss", "train", "data"):
        if key in spec.raw:
            doc[key] = spec.raw[key]
    out.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    return 0
