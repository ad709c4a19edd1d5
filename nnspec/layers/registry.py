"""The layer catalog: lookup by name, with "did you mean" and plugin layer types.

Built-in types register when their module is imported (the list below is explicit: the
registry is visible, not magic). Third-party packages add layer types through the
``nnspec.layers`` entry-point group; each entry point names a LayerType subclass.
"""

from __future__ import annotations

from nnspec.layers.base import LayerType

_REGISTRY: dict[str, type[LayerType]] = {}
_ALIASES: dict[str, str] = {}
_loaded = False
_plugins_loaded = False

BUILTIN_MODULES = (
    "nnspec.layers.io",
    "nnspec.layers.core",
    "nnspec.layers.activations",
    "nnspec.layers.conv",
    "nnspec.layers.pooling",
    "nnspec.layers.norm",
    "nnspec.layers.recurrent",
    "nnspec.layers.attention",
    "nnspec.layers.merge",
)


def register(cls: type[LayerType]) -> type[LayerType]:
    """Class decorator: add a layer type to the catalog."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"layer type {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        import importlib

        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True


class PluginWarning(UserWarning):
    """A layer plugin could not be used; nnspec goes on without it."""


def load_plugins() -> list[str]:
    """Register layer types from installed plugins; returns the names they added.

    Plugins are other people's code: one that fails to import, names something that is not a
    LayerType, or collides with a built-in or another plugin's name is skipped with one
    :class:`PluginWarning` naming its package, and the rest of the catalog works as before.
    """
    global _plugins_loaded
    _load_builtins()
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    from importlib.metadata import entry_points

    before = set(_REGISTRY)
    try:
        found = list(entry_points(group="nnspec.layers"))
    except Exception as exc:  # broken package metadata somewhere on the path
        _plugin_warning(f"could not list layer plugins: {type(exc).__name__}: {exc}")
        return []
    for ep in found:
        where = f"layer plugin `{ep.name} = {ep.value}`" + (f" from package {_package(ep)}" if _package(ep) else "")
        try:
            cls = ep.load()
        except (Exception, SystemExit) as exc:
            _plugin_warning(f"{where} failed to load ({type(exc).__name__}: {_first_line(exc)}); it is skipped")
            continue
        problem = _plugin_problem(cls)
        if problem:
            _plugin_warning(f"{where} {problem}; it is skipped")
            continue
        taken = [n for n in (cls.name, *cls.aliases) if n in _REGISTRY or n in _ALIASES]
        if taken:
            owner = _REGISTRY.get(taken[0]) or _REGISTRY.get(_ALIASES.get(taken[0], ""))
            by = "a built-in layer type" if owner and owner.__module__.startswith("nnspec.") else "another plugin"
            _plugin_warning(f"{where} defines `{taken[0]}`, which {by} already uses; it is skipped")
            continue
        register(cls)
    return sorted(set(_REGISTRY) - before)


def _plugin_problem(cls) -> str:
    """Why a plugin's class cannot be a layer type ('' when it can)."""
    import re

    if not (isinstance(cls, type) and issubclass(cls, LayerType)):
        return "is not a LayerType subclass"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return "has no valid `name` (lower-case letters, digits and _)"
    if not isinstance(getattr(cls, "keras_class", None), str) or not cls.keras_class:
        return "has no `keras_class` (the Keras class name its layers get)"
    if not isinstance(cls.aliases, tuple) or not all(isinstance(a, str) for a in cls.aliases):
        return "has `aliases` that are not a tuple of names"
    try:
        cls.schema()
        cls.auto_name()
        cls.defaults()
    except Exception as exc:
        return f"has unusable attributes ({type(exc).__name__}: {_first_line(exc)})"
    return ""


def _package(ep) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no message"


def _plugin_warning(message: str) -> None:
    import warnings

    warnings.warn(message, PluginWarning, stacklevel=3)


def canonical(name: str) -> str | None:
    """The catalog name for a type name or alias, or None when unknown."""
    _load_builtins()
    if name in _REGISTRY:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    if not _plugins_loaded:
        load_plugins()
        return canonical(name)
    return None


def get(name: str) -> type[LayerType]:
    key = canonical(name)
    if key is None:
        raise KeyError(name)
    return _REGISTRY[key]


def all_types(include_plugins: bool = True) -> dict[str, type[LayerType]]:
    _load_builtins()
    if include_plugins:
        load_plugins()
    return dict(sorted(_REGISTRY.items()))


def all_names_and_aliases() -> list[str]:
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_ALIASES))


def aliases() -> dict[str, str]:
    _load_builtins()
    return dict(_ALIASES)
