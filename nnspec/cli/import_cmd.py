"""`nnspec import MODEL -o SPEC.yaml`: a Keras model (a .keras file or keras.applications.NAME) as a spec."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL", help="a .keras file, or keras.applications.NAME (built with weights=None)")
    p.add_argument("-o", "--output", metavar="SPEC", required=True, help="the spec to write (YAML)")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="also write the model's weights as a neutral weights file (.safetensors)")
    p.add_argument("--name", default=None, help="the spec's model name (default: the Keras model's)")
    p.add_argument("--flat", action="store_true",
                   help="list every layer (default: runs of repeated layers are written once, as blocks)")


def run(args, out, err) -> int:
    from nnspec.api import import_keras
    from nnspec.fileio import atomic_write

    imported, spec, weights = import_keras(args.model, name=args.name, blocks=not args.flat)
    atomic_write(args.output, imported.text)
    for note in imported.notes:
        print(f"note: {note}", file=err)
    line = f"wrote {args.output}: {len(spec.graph.nodes) - len(spec.graph.inputs)} layers, {spec.total_params:,} parameters"
    blocks = sum(1 for text in imported.text.splitlines() if text.lstrip().startswith("- block:"))
    if blocks:
        line += f" ({len(imported.text.splitlines())} lines, {blocks} repeated runs written as blocks)"
    if args.weights:
        from nnspec.backends.weights import write_weights

        write_weights(args.weights, weights, {"spec": spec.name, "source": str(args.model)})
        line += f"; weights in {args.weights}"
    print(line, file=out)
    return 0
