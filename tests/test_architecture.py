"""The training half's structure: one backend registry, registries of named choices that every
backend implements, typed settings, and imports that point one way (no cycles inside nnspec)."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

from nnspec import choices
from nnspec.backends.base import BackendInfo, get_backend, infos, names, register

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nnspec"
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: pathlib.Path, module: str) -> set[str]:
    """Every module imported anywhere in a file (function bodies included), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_no_file_outside_backends_imports_a_framework():
    offenders = []
    for module, path in _modules().items():
        if module.startswith("nnspec.backends"):
            continue
        for name in _imports(path, module):
            if name.split(".")[0] in FRAMEWORKS:
                offenders.append(f"{module} imports {name}")
    assert not offenders, offenders


def test_there_is_no_import_cycle_inside_nnspec():
    modules = _modules()
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    # a module importing its own package's __init__ is not a cycle of code; skip parents
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    assert not cycles, cycles


def test_no_module_imports_the_public_facade():
    offenders = [m for m, p in _modules().items() if m not in ("nnspec", "nnspec.api") and not m.startswith("nnspec.cli")
                 and "nnspec.api" in _imports(p, m)]
    assert not offenders, offenders


def test_the_registry_lists_the_backends_and_refuses_unknown_ones():
    assert names()[:2] == ["torch", "keras"]
    assert all(isinstance(i, BackendInfo) for i in infos().values())
    from nnspec.errors import BackendMissing

    with pytest.raises(BackendMissing, match="unknown backend `nope`; choose one of: torch, keras"):
        get_backend("nope")


def test_a_registered_backend_is_offered_by_the_cli_without_other_edits(monkeypatch):
    import argparse

    from nnspec.backends import base
    from nnspec.cli.common import add_backend_argument

    monkeypatch.setattr(base, "_REGISTRY", base._Registry(dict(base._REGISTRY.infos), plugins_loaded=True))
    register(BackendInfo(name="mine", module="nnspec.backends.torch", requires="numpy", install="pip install mine"))
    parser = argparse.ArgumentParser()
    add_backend_argument(parser, "framework")
    assert parser.parse_args(["--backend", "mine"]).backend == "mine"
    assert "mine" in names()


def test_a_missing_keras_engine_is_one_line_with_the_install_command(monkeypatch):
    import sys

    from nnspec.backends import base
    from nnspec.errors import BackendMissing

    info = BackendInfo(name="k", module="nnspec.backends.keras", requires="nnspec_fake_framework", install="-",
                       variants=(base.Variant("nothere", "surely_not_installed_module", "pip install nothere"),),
                       variant_env="NNSPEC_TEST_ENGINE", default_variant="nothere")
    monkeypatch.delitem(sys.modules, "surely_not_installed_module", raising=False)
    with pytest.raises(BackendMissing, match="needs surely_not_installed_module, which is not installed: pip install"):
        base._select_variant(info, None)


@pytest.mark.parametrize("backend", ["torch", "keras"])
@pytest.mark.parametrize("kind", ["OPTIMIZERS", "LOSSES", "METRICS"])
def test_every_named_choice_has_a_factory_in_every_backend(backend, kind):
    if not infos()[backend].installed():
        pytest.skip(f"{backend} is not installed")
    loop = importlib.import_module(f"nnspec.backends.{backend}.loop")
    registry = getattr(choices, kind)
    table = getattr(loop, kind)
    assert set(table) == set(registry), f"{backend} {kind.lower()}: missing {sorted(set(registry) - set(table))}"


def test_every_backend_provides_the_protocol():
    import typing

    from nnspec.backends.base import Backend

    wanted = [n for n in dir(Backend) if not n.startswith("_")] + list(typing.get_type_hints(Backend))
    for name, info in infos().items():
        if not info.installed():
            continue
        module = get_backend(name)
        missing = sorted({w for w in wanted if not hasattr(module, w)})
        assert not missing, f"backend {name} lacks {missing}"


@pytest.mark.keras
def test_keras_mixed_precision_is_set_per_layer_and_leaves_the_global_policy_alone():
    import keras

    import nnspec
    from nnspec.backends import keras as kb

    before = keras.mixed_precision.global_policy().name
    spec = nnspec.load(ROOT / "specs" / "fashion_mnist_cnn.yaml")
    model = kb.build(spec, seed=0, dtype_policy="mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == before
    assert model.get_layer("conv2d").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer(spec.graph.heads["output"]).dtype_policy.name == "float32"  # outputs stay float32
