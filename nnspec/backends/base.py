"""The ``Backend`` protocol and the one registry of backends.

A backend is a package ``nnspec.backends.<name>`` (or a third-party module) that compiles a checked
spec to a framework model and does everything else that needs the framework: weights in and out,
the training loop, the runner ``nnspec inspect`` uses, export. Nothing outside a backend imports a
framework; everything else (the CLI's ``--backend`` choices, settings, compare, export, inspect,
training) reads this registry.

Backends are described by a light :class:`BackendInfo` (no framework import) and loaded by name on
first use. Third-party backends register a ``BackendInfo`` under the entry-point group
``nnspec.backends``; nothing in nnspec needs editing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from nnspec.errors import BackendMissing

if TYPE_CHECKING:
    from nnspec.pipeline import Spec

ENTRY_POINT_GROUP = "nnspec.backends"
Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Variant:
    """A flavour of a backend chosen before its framework is imported (Keras's JAX/TF/torch engines)."""

    name: str
    requires: str  # import name that must be installed
    install: str  # the command that installs it
    env: tuple[tuple[str, str], ...] = ()  # defaults set (when unset) before the import, e.g. log levels


@dataclass(frozen=True)
class BackendInfo:
    """What the registry knows of a backend without importing it."""

    name: str
    module: str  # the module implementing :class:`Backend`
    requires: str  # the framework's import name
    install: str  # one line: how to install what it needs
    description: str = ""
    variants: tuple[Variant, ...] = ()
    variant_env: str = ""  # environment variable that selects a variant before the framework's import
    default_variant: str = ""

    def installed(self) -> bool:
        return importlib.util.find_spec(self.requires) is not None

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise BackendMissing(f"the {self.name} backend has no engine `{name}`; choose one of: "
                             f"{', '.join(v.name for v in self.variants)}")


class EpochSink(Protocol):
    """What a trainer reports to (the training orchestration's ``Epochs``)."""

    progress: Any
    lr: Any

    def lr_for_epoch(self, epoch: int) -> float: ...
    def lr_for_step(self, global_step: int) -> float: ...
    def epoch_begin(self, epoch: int) -> None: ...
    def epoch_end(self, epoch: int, logs: dict[str, float], seconds: float, lr: float) -> bool: ...


class Trainer(Protocol):
    """A model and optimiser being trained by one backend; built by :meth:`Backend.trainer`."""

    optimizer_ext: str

    def fit(self, start: int, end: int, epochs: EpochSink) -> None: ...
    def predict(self, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...
    def get_weights(self) -> Weights: ...
    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...
    def save_optimizer(self, path: str) -> None: ...
    def load_optimizer(self, path: str) -> None: ...


class Runner(Protocol):
    """A trained model opened for ``nnspec inspect``: probabilities, feature maps and Grad-CAM."""

    backend: str

    def probabilities(self, x: np.ndarray) -> np.ndarray: ...
    def feature_maps(self, x: np.ndarray, layer: str) -> np.ndarray: ...
    def grad_cam(self, x: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Backend(Protocol):
    """Everything nnspec asks of a framework. A backend module provides these names."""

    NAME: str
    BUILDERS: Mapping[str, Callable[..., Any]]  # layer type -> builder; the conformance test reads it
    EXPORT_FORMATS: Sequence[str]

    def build(self, spec: Spec, seed: int | None = None, **options: Any) -> Any: ...
    def get_weights(self, model: Any, spec: Spec) -> Weights: ...
    def set_weights(self, model: Any, spec: Spec, weights: Mapping[str, np.ndarray]) -> None: ...
    def layer_counts(self, model: Any, spec: Spec) -> dict[str, tuple[int, int]]: ...
    def select_device(self, requested: str) -> str: ...
    def versions(self) -> dict[str, str]: ...
    def trainer(self, spec: Spec, settings: Any, train: Any, val: Any, augment: Any = None) -> Trainer: ...
    # Optional, for data-parallel training over several processes (nnspec.training.parallel):
    # init_parallel(world, device) -> (Collective, device), and trainer(..., parallel=collective).
    def runner(self, run: Any, model: Any) -> Runner: ...
    def export(self, spec: Spec, model: Any, format: str, output: str, inputs: list[np.ndarray],
               verify: bool) -> Any: ...


BUILTIN: tuple[BackendInfo, ...] = (
    BackendInfo(
        name="torch", module="nnspec.backends.torch", requires="torch",
        install="pip install 'nnspec[torch]'  (CPU: pip install torch==2.13.0)",
        description="PyTorch nn.Module",
    ),
    BackendInfo(
        name="keras", module="nnspec.backends.keras", requires="keras",
        install="pip install 'nnspec[keras]'  (keras 3 and tensorflow-cpu)",
        description="Keras 3 functional model on TensorFlow, JAX or PyTorch",
        variants=(
            Variant("tensorflow", "tensorflow", "pip install tensorflow-cpu  (GPU: pip install 'tensorflow[and-cuda]')",
                    env=(("TF_CPP_MIN_LOG_LEVEL", "3"),)),
            Variant("jax", "jax", "pip install jax  (GPU: pip install 'jax[cuda12]')"),
            Variant("torch", "torch", "pip install torch==2.13.0  (CPU build)"),
        ),
        variant_env="KERAS_BACKEND",
        default_variant="tensorflow",
    ),
)


@dataclass
class _Registry:
    infos: dict[str, BackendInfo] = field(default_factory=dict)
    plugins_loaded: bool = False


_REGISTRY = _Registry({info.name: info for info in BUILTIN})


def _load_plugins() -> None:
    if _REGISTRY.plugins_loaded:
        return
    _REGISTRY.plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            info = ep.load()
        except Exception as exc:  # a broken plugin must not break nnspec: say so once, go on
            print(f"warning: backend plugin `{ep.name}` ({ep.value}) could not be loaded: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if not isinstance(info, BackendInfo):
            print(f"warning: backend plugin `{ep.name}` ({ep.value}) is not an nnspec BackendInfo; ignored",
                  file=sys.stderr)
            continue
        if info.name in _REGISTRY.infos:
            print(f"warning: backend plugin `{ep.name}` ({ep.value}) reuses the name `{info.name}`; ignored",
                  file=sys.stderr)
            continue
        _REGISTRY.infos[info.name] = info


def register(info: BackendInfo) -> None:
    """Register a backend in this process (entry points do this for installed packages)."""
    _REGISTRY.infos[info.name] = info


def infos() -> dict[str, BackendInfo]:
    """Every known backend by name, built-ins first."""
    _load_plugins()
    return dict(_REGISTRY.infos)


def names() -> list[str]:
    """The names ``--backend`` accepts."""
    return list(infos())


def info(name: str) -> BackendInfo:
    known = infos()
    if name not in known:
        raise BackendMissing(f"unknown backend `{name}`; choose one of: {', '.join(known)}")
    return known[name]


def available() -> list[str]:
    """The backends whose framework is installed."""
    return [name for name, i in infos().items() if i.installed()]


def variant_in_use(backend_info: BackendInfo) -> str | None:
    """The variant this process uses (or will use) for ``backend_info``; None when it has none."""
    if not backend_info.variants:
        return None
    loaded = sys.modules.get(backend_info.requires)
    if loaded is not None and backend_info.name == "keras":
        return str(cast(Any, loaded).backend.backend())
    return os.environ.get(backend_info.variant_env) or backend_info.default_variant


def get_backend(name: str, variant: str | None = None) -> Backend:
    """Import a backend by name (and, for Keras, its engine); a missing framework is one clear line.

    ``variant`` picks the engine of a backend that has several (``keras``: tensorflow, jax, torch);
    without it the environment variable (``KERAS_BACKEND``) or the default decides. The variant must
    be chosen before the framework is first imported in this process.
    """
    backend_info = info(name)
    if not backend_info.installed():
        raise BackendMissing(f"the {name} backend needs {backend_info.requires}, which is not installed: "
                             f"{backend_info.install}")
    if backend_info.variants:
        _select_variant(backend_info, variant)
    return cast(Backend, importlib.import_module(backend_info.module))


def _select_variant(backend_info: BackendInfo, requested: str | None) -> None:
    # unasked, an already imported framework keeps its engine (a notebook that imported keras itself)
    wanted = requested or variant_in_use(backend_info) or backend_info.default_variant
    chosen = backend_info.variant(wanted)
    if backend_info.requires in sys.modules:
        current = variant_in_use(backend_info)
        if current != chosen.name:
            raise BackendMissing(
                f"{backend_info.requires} is already running on {current} in this process, so it cannot switch "
                f"to {chosen.name}; start a new process with {backend_info.variant_env}={chosen.name}")
        return
    if importlib.util.find_spec(chosen.requires) is None:
        raise BackendMissing(f"the {backend_info.name} backend on {chosen.name} needs {chosen.requires}, which is "
                             f"not installed: {chosen.install}")
    os.environ[backend_info.variant_env] = chosen.name
    for key, value in chosen.env:
        os.environ.setdefault(key, value)
