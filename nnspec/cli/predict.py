"""`nnspec predict RUN_DIR INPUTS`: predictions of a trained run for an .npy/.npz file or images."""

from __future__ import annotations

HELP = "predict with a trained run"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by nnspec train")
    p.add_argument("inputs", metavar="INPUTS", nargs="+",
                   help=".npy / .npz (raw or prepared arrays) or image files (.png, .jpg, ...)")
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(p, "framework that runs the model (default: the one the run trained on)")
    p.add_argument("--top", type=int, default=3, help="classes shown per example (default 3)")
    p.add_argument("--raw", action="store_true",
                   help="inputs are already model-ready (skip the run's scaling and normalisation)")
    p.add_argument("--format", choices=["text", "json"], default="text")


def run(args, out, err) -> int:
    import json

    from nnspec.training.predict import predict_files

    result = predict_files(args.run_dir, args.inputs, backend=args.backend, prepared=args.raw, top=args.top)
    if args.format == "json":
        print(json.dumps(result, indent=2), file=out)
        return 0
    transform = result.get("input_transform")
    if transform and transform.get("formula") != "x":
        done = "applied" if result.get("applied_transform") else "skipped (--raw)"
        print(f"input transform {done}: {transform['formula']} (the run trained on {transform['raw_dtype']} values in "
              f"[{transform['raw_range'][0]:.4g}, {transform['raw_range'][1]:.4g}])", file=err)
    for item in result["predictions"]:
        parts = []
        for head, value in item["heads"].items():
            label = f"{head}: " if len(item["heads"]) > 1 else ""
            if "classes" in value:
                parts.append(label + ", ".join(f"{c['class']} {c['probability']:.1%}" for c in value["classes"]))
            else:
                parts.append(label + ", ".join(f"{v:.4g}" for v in value["values"]))
        print(f"{item['source']}: " + "; ".join(parts), file=out)
    return 0
