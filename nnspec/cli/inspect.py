"""`nnspec inspect RUN_DIR`: learned filters, feature maps, misclassified examples and Grad-CAM of a run."""

from __future__ import annotations

HELP = "pictures of what a trained network learned"


def _scan(value: str) -> int | None:
    if value == "all":
        return None
    return int(value)


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a classification run directory written by nnspec train")
    p.add_argument("-o", "--output", metavar="DIR", default=None, help="where the PNGs go (default: RUN_DIR/inspect)")
    p.add_argument(
        "--layer", metavar="NAME", default=None, help="layer whose feature maps to draw (default: the first conv layer)"
    )
    p.add_argument(
        "--images",
        metavar="N",
        type=int,
        default=6,
        help="test images for feature maps and Grad-CAM, one per class in turn (default 6)",
    )
    p.add_argument("--channels", metavar="N", type=int, default=16, help="feature-map channels drawn (default 16)")
    p.add_argument(
        "--filters-layer",
        metavar="NAME",
        default=None,
        help="conv layer whose filters to draw (default: the first conv layer)",
    )
    p.add_argument(
        "--cam-layer",
        metavar="NAME",
        default=None,
        help="layer for Grad-CAM (default: the output of the last convolution's block)",
    )
    p.add_argument("--no-grad-cam", dest="grad_cam", action="store_false", help="skip the Grad-CAM picture")
    p.add_argument(
        "--scan",
        metavar="N|all",
        type=_scan,
        default=2000,
        help="test images scored to find misclassified ones (default 2000)",
    )
    p.add_argument(
        "--misclassified",
        metavar="N",
        type=int,
        default=24,
        help="misclassified examples drawn, most confident first (default 24)",
    )
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(
        p, "framework that computes feature maps and Grad-CAM (default: torch if installed, else keras)",
    )
    p.add_argument(
        "--weights",
        choices=["best", "last"],
        default=None,
        help="which saved weights (default: those the run was scored with)",
    )


def run(args, out, err) -> int:
    from nnspec.inspect import format_report, inspect_run

    result = inspect_run(
        args.run_dir,
        layer=args.layer,
        filters_layer=args.filters_layer,
        cam_layer=args.cam_layer,
        images=args.images,
        scan=args.scan,
        misclassified=args.misclassified,
        channels=args.channels,
        backend=args.backend,
        weights=args.weights,
        out=args.output,
        grad_cam=args.grad_cam,
    )
    print(format_report(result), file=out)
    return 0
