"""Structure-aware mutations of specs: the fuzzer's case generator.

Cases start from the specs in ``specs/``, ``examples/`` and ``tests/golden/`` and are mutated
either as data (a random place in the parsed document gets a hostile value, loses a key, gains
an unknown one, a layer changes type, a block is repeated ...) or as text (lines deleted,
duplicated, re-indented, truncated; YAML punctuation, anchors, tags and hostile numbers
inserted). Every case is a pure function of ``(seed, index)``, so any failure replays exactly.
"""

from __future__ import annotations

import pathlib
import random
from functools import cache

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS_DIRS = ("specs", "examples", "tests/golden")

HOSTILE_NUMBERS = [
    0, -1, 1, 2, 3, 7, 10.0, 3.0, 0.5, -0.0, 1e-30, 1e308, 1e400, -1e400, float("nan"),
    2**31, 2**63, 10**15 + 1, 10**18, 10**30, 10**400, -(10**19), True, False,
]
HOSTILE_TEXT = [
    "", " ", "x", "$", "$input", "$prev", "${", "${}", "$nope", "../../evil", "a.b", "a/b", "é", "\u202e",
    "null", "~", "same", "valid", "relu", "softmax", "x" * 5000, "${2**10**10}", "${round(1, -10**18)}",
    "${'a' * 10**9}", "${min()}", "${abs(1,2)}", "${int(1e300*1e300)}", "${999999.0**64}", "${(-8)**0.5}",
    "${__import__('os')}", "${().__class__}", "${lambda: 1}", "${[1]*10**9}", "${10**18 // 3}", "${1/0}",
    "%", "*", "&", "!!python/object:os.system", "\t", "{", "[", "]", "- ",
]
TEXT_INSERTS = [
    "[", "]", "{", "}", ":", ": ", "- ", "-", ",", "&a ", "*a", "!!int ", "!!str ", "!!python/name:os.system ",
    "!foo ", "|", ">", "'", '"', "#", "%YAML 1.1\n", "---\n", "...\n", "? ", "\t", "\n", "  ", "\x00", "\ufeff",
    "<<: ", "${", "}", "$", "0x1F", "1e400", ".nan", ".inf", "10.0", "-1", "99999999999999999999",
]
TOP_KEYS = ["name", "vars", "inputs", "blocks", "encoder", "backbone", "decoder", "head", "heads", "loss",
            "train", "data", "description"]


@cache
def corpus() -> tuple[tuple[str, str], ...]:
    """(name, text) of every seed spec."""
    out = []
    for d in CORPUS_DIRS:
        for p in sorted((ROOT / d).glob("*.yaml")):
            out.append((f"{d}/{p.name}", p.read_text(encoding="utf-8", errors="replace")))
    return tuple(out)


@cache
def _parsed(index: int):
    try:
        return yaml.safe_load(corpus()[index][1])
    except yaml.YAMLError:
        return None


@cache
def layer_names() -> tuple[str, ...]:
    from nnspec.layers import registry

    return tuple(registry.all_names_and_aliases())


@cache
def attribute_names() -> tuple[str, ...]:
    from nnspec.layers import registry

    names = set()
    for cls in registry.all_types(include_plugins=False).values():
        names.update(cls.all_attributes())
    return tuple(sorted(names))


def expression(rng: random.Random, names: list[str], depth: int = 0) -> str:
    """A random expression over numbers, the spec's names, operators and functions (valid or not)."""
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        pool = [str(rng.choice([0, 1, 2, 3, 8, 64, 10**9, 10**18])), str(rng.choice([0.5, 2.0, 1e300, 1e-300])),
                rng.choice(["true", "false", "input", "prev", "input.shape[-1]", "prev.shape", "'relu'",
                            "repeat_index", "block_index", "block_count"])]
        if names:
            pool.append(rng.choice(names))
        return rng.choice(pool)
    if roll < 0.75:
        op = rng.choice(["+", "-", "*", "/", "//", "%", "**", "<", "==", " and ", " or ", "&", "<<", "@"])
        return f"({expression(rng, names, depth + 1)}{op}{expression(rng, names, depth + 1)})"
    if roll < 0.8:
        return f"-{expression(rng, names, depth + 1)}"
    if roll < 0.85:
        a, b, c = (expression(rng, names, depth + 1) for _ in range(3))
        return rng.choice([f"({a} if {b} else {c})", f"(not {a})", f"({a} <= {b} < {c})"])
    fn = rng.choice(["min", "max", "round", "int", "abs", "len", "float", "pow", "str", "letter", "channels",
                     "ceil", "floor"])
    args = ", ".join(expression(rng, names, depth + 1) for _ in range(rng.randint(0, 3)))
    return f"{fn}({args})"


def hostile_value(rng: random.Random, names: list[str]):
    """A value that is wrong in an interesting way."""
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice(HOSTILE_NUMBERS)
    if kind == 1:
        return rng.choice(HOSTILE_TEXT)
    if kind == 2:
        return "${" + expression(rng, names) + "}"
    if kind == 3:
        return "$" + (rng.choice(names) if names else "x")
    if kind == 4:
        return [hostile_value(rng, names) for _ in range(rng.randint(0, 3))]
    if kind == 5:
        return {rng.choice([*attribute_names(), "use", "repeat", "with", "shape", "type"]): hostile_value(rng, names)}
    if kind == 6:
        nested: object = rng.choice([1, "x"])
        for _ in range(rng.choice([3, 63, 70])):
            nested = [nested]
        return nested
    if kind == 7:
        return None
    if kind == 8:
        return rng.choice(layer_names())
    return rng.randint(-5, 300)


def _places(node, path=()):
    """Every (path, value) in a document, containers included."""
    yield path, node
    if isinstance(node, dict):
        for k, v in list(node.items())[:200]:
            yield from _places(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:200]):
            yield from _places(v, (*path, i))


def _set(doc, path, value):
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return doc


def _names_in(doc) -> list[str]:
    names = []
    if isinstance(doc, dict):
        for key in ("vars",):
            if isinstance(doc.get(key), dict):
                names += [str(k) for k in doc[key]]
        if isinstance(doc.get("blocks"), dict):
            for b in doc["blocks"].values():
                if isinstance(b, dict) and isinstance(b.get("params"), dict):
                    names += [str(k) for k in b["params"]]
    return names or ["base", "width", "repeat_index"]


def mutate_data(doc, rng: random.Random):
    """One structural mutation of a parsed document (returns the new document)."""
    import copy

    doc = copy.deepcopy(doc)
    places = list(_places(doc))
    path, value = rng.choice(places)
    names = _names_in(doc)
    if rng.random() < 0.35:
        return _benign(doc, places, rng)
    op = rng.randrange(9)
    if op == 0:  # replace with something hostile
        return _set(doc, path, hostile_value(rng, names))
    if op == 1 and path:  # delete
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
        return doc
    if op == 2 and isinstance(value, dict):  # add a key, known somewhere or not
        key = rng.choice([*attribute_names(), *TOP_KEYS, "use", "repeat", "with", "params", "layers", "zzz"])
        value[key] = hostile_value(rng, names)
        return doc
    if op == 3 and isinstance(value, list) and value:  # duplicate, drop or reverse items
        choice = rng.randrange(3)
        if choice == 0:
            value.insert(rng.randrange(len(value) + 1), copy.deepcopy(rng.choice(value)))
        elif choice == 1:
            value.pop(rng.randrange(len(value)))
        else:
            value.reverse()
        return doc
    if op == 4 and isinstance(value, dict) and len(value) == 1:  # a layer changes type
        (attrs,) = value.values()
        return _set(doc, path, {rng.choice(layer_names()): attrs})
    if op == 5 and isinstance(doc, dict):  # use a block, maybe hugely repeated
        blocks = doc.setdefault("blocks", {}) if isinstance(doc.get("blocks", {}), dict) else {}
        if not blocks:
            blocks["b"] = {"params": {"width": 4}, "layers": [{"dense": "$width"}]}
        use = {"use": rng.choice(list(blocks) + ["nope"]),
               "repeat": rng.choice([1, 2, 3, 0, -1, 10**9, 10**5, "${2**40}", 2.0])}
        if rng.random() < 0.5:
            use["name"] = rng.choice(["stage", "../x", "a.b", {"x": 1}, 5, ""])
        if rng.random() < 0.3:
            use["inputs"] = hostile_value(rng, names)
        if rng.random() < 0.3:
            use["with"] = {rng.choice(names): hostile_value(rng, names)}
        if rng.random() < 0.3:
            use["when"] = "${" + expression(rng, names) + "}"
        if rng.random() < 0.2:
            use["prefix"] = rng.choice(["s${repeat_index}_", "b${letter(block_index)}_", "${1/0}", "../", ""])
        section = doc.get("encoder") if isinstance(doc.get("encoder"), list) else None
        if section is not None:
            section.insert(rng.randrange(len(section) + 1), {"block": use})
        return doc
    if op == 6 and isinstance(doc, dict):  # vars and expressions
        doc["vars"] = {n: hostile_value(rng, names) for n in names[:3]}
        return doc
    if op == 7 and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _set(doc, path, rng.choice(HOSTILE_NUMBERS))
    if op == 8 and isinstance(doc, dict):  # move a section's contents somewhere else
        a, b = rng.choice(TOP_KEYS), rng.choice(TOP_KEYS)
        if a in doc:
            doc[b] = doc.pop(a)
        return doc
    return _set(doc, path, hostile_value(rng, names))


GOOD_LAYERS = [{"dropout": 0.25}, "batch_norm", {"dense": 8}, {"activation": "relu"}, "flatten",
               {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same"}}, {"max_pool2d": 2},
               "global_average_pool2d", {"reshape": [-1]}, "layer_norm"]


def _benign(doc, places, rng: random.Random):
    """A plausible edit (another size, activation or an extra common layer): keeps many specs valid,
    so that summary, resolve, render and diff see varied valid graphs too."""
    import copy

    ints = [(p, v) for p, v in places if isinstance(v, int) and not isinstance(v, bool) and p]
    lists = [(p, v) for p, v in places if isinstance(v, list) and p and p[0] in ("encoder", "decoder", "head")]
    roll = rng.random()
    if ints and roll < 0.5:
        path, _ = rng.choice(ints)
        return _set(doc, path, rng.choice([1, 2, 3, 4, 5, 8, 16, 32, 64, 128]))
    if lists and roll < 0.9:
        _, items = rng.choice(lists)
        items.insert(rng.randrange(len(items) + 1), copy.deepcopy(rng.choice(GOOD_LAYERS)))
        return doc
    strs = [(p, v) for p, v in places if v in ("relu", "linear", "softmax", "tanh", "sigmoid", "same", "valid")]
    if strs:
        path, _ = rng.choice(strs)
        return _set(doc, path, rng.choice(["relu", "linear", "softmax", "tanh", "sigmoid", "same", "valid", "gelu"]))
    return doc


def mutate_text(text: str, rng: random.Random) -> str:
    """One textual mutation."""
    lines = text.split("\n")
    op = rng.randrange(8)
    i = rng.randrange(len(lines)) if lines else 0
    if op == 0 and lines:
        del lines[i]
    elif op == 1 and lines:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == 2 and lines:
        lines[i] = " " * rng.choice([1, 2, 3, 4, 8]) + lines[i]
    elif op == 3:
        pos = rng.randrange(len(text) + 1)
        return text[:pos] + rng.choice(TEXT_INSERTS) + text[pos:]
    elif op == 4:
        return text[: rng.randrange(len(text) + 1)]
    elif op == 5 and lines:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 6:
        import re

        numbers = list(re.finditer(r"(?<![\w.])\d+(\.\d+)?", text))
        if numbers:
            m = rng.choice(numbers)
            new = rng.choice(["0", "-1", "10.0", "1e400", ".nan", "99999999999999999999", "3.5", "0x10", "1_000"])
            return text[: m.start()] + new + text[m.end():]
    elif op == 7 and lines:
        lines[i] = lines[i].replace(": ", ": &a ", 1) if rng.random() < 0.5 else lines[i] + " *a"
    return "\n".join(lines)


def case(seed: int, index: int) -> tuple[str, str]:
    """The ``index``-th case of a run: (its origin, YAML text)."""
    rng = random.Random(seed * 1_000_003 + index)
    seeds = corpus()
    k = rng.randrange(len(seeds))
    origin, text = seeds[k]
    rounds = rng.choice([1, 1, 1, 2, 2, 3, 5])
    data = _parsed(k)
    how = []
    for _ in range(rounds):
        if data is not None and rng.random() < 0.65:
            data = mutate_data(data, rng)
            how.append("data")
        else:
            if data is not None and how and how[-1] == "data":
                text = _dump(data)
            text = mutate_text(text, rng)
            data = None
            how.append("text")
    if how[-1] == "data":
        text = _dump(data)
    return f"{origin} [{'+'.join(how)}]", text


def _dump(data) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096)
    except (yaml.YAMLError, RecursionError, ValueError):
        return repr(data)
