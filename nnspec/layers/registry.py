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


def load_plugins() -> list[str]:
    """Register layer types from installed plugins; returns the names they added."""
    global _plugins_loaded
    _load_builtins()
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    from importlib.metadata import entry_points

    before = set(_REGISTRY)
    for ep in entry_points(group="nnspec.layers"):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, LayerType):
            register(cls)
    return sorted(set(_REGISTRY) - before)


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
