"""A trained run's model on a framework, for what needs one: predictions, feature maps, Grad-CAM.

The model is built from the run's spec on the chosen backend and loaded with the run's neutral
weights file, so a run trained on either framework can be looked at on either one. The runners
themselves live in each backend (``backend.runner``), with what they share in
:mod:`nnspec.backends.inspection`; this module imports no framework.
"""

from __future__ import annotations

from nnspec.inspect.errors import InspectError
from nnspec.inspect.run import InspectedRun


def default_backend() -> str:
    """The first installed backend in the registry's order (torch, then keras); a clear error when none is."""
    from nnspec.backends.base import available, infos

    have = available()
    if have:
        return have[0]
    raise InspectError(
        "feature maps and predictions need a framework, and none is installed: "
        + " or ".join(i.install for i in infos().values())
    )


def open_runner(run: InspectedRun, backend: str | None = None):
    """Build the run's model on ``backend`` (default: :func:`default_backend`) with its saved weights."""
    from nnspec.backends import get_backend
    from nnspec.backends.weights import WeightsFileError, load_weights
    from nnspec.errors import BackendMissing

    backend = backend or default_backend()
    try:
        module = get_backend(backend)
    except BackendMissing as exc:
        raise InspectError(str(exc)) from None
    model = module.build(run.spec, seed=0)
    try:
        load_weights(model, run.spec, run.weights_path)
    except WeightsFileError as exc:
        raise InspectError(str(exc)) from None
    return module.runner(run, model)
