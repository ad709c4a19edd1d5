"""`nnspec export SPEC --weights FILE --format onnx|torchscript|keras -o OUT`."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="a neutral weights file (nnspec save_weights / a trained run); default: fresh weights, seed 0")
    from nnspec.backends.export import KNOWN_FORMATS

    p.add_argument("--format", choices=list(KNOWN_FORMATS), required=True,
                   help="onnx and torchscript are written by the torch backend, keras by the keras backend")
    p.add_argument("-o", "--output", metavar="OUT", required=True)
    p.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                   help="size of a variable input dimension for tracing (repeatable), e.g. --dim seq=100")


def _dims(values, err) -> dict[str, int] | None:
    dims = {}
    for item in values:
        name, sep, size = item.partition("=")
        if not sep or not size.isdigit() or int(size) < 1:
            print(f"error: --dim expects NAME=SIZE with SIZE >= 1 (got {item!r})", file=err)
            return None
        dims[name] = int(size)
    return dims


def run(args, out, err) -> int:
    from nnspec.backends.export import export
    from nnspec.backends.weights import WeightsFileError
    from nnspec.pipeline import load

    dims = _dims(args.dim, err)
    if dims is None:
        return 2
    spec = load(args.spec)
    if not args.weights:
        print("note: no --weights given; exporting freshly initialised weights (seed 0)", file=err)
    try:
        result = export(spec, args.output, args.format, weights=args.weights, dims=dims)
    except (WeightsFileError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    line = f"wrote {result.path} ({result.format})"
    if result.max_abs_diff is not None:
        line += f"; onnxruntime agrees with torch within {result.max_abs_diff:.1e}"
    print(line, file=out)
    return 0
