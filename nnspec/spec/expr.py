"""A safe evaluator for computed values: `$base`, `${2 * base}`, `${stride == 2 and not last}`.

What an expression may use:

- numbers, `true`/`false`, quoted text (`'relu'`), and names bound in ``vars``, block parameters
  and the counters ``repeat_index`` / ``block_index`` / ``block_count``;
- arithmetic ``+ - * / // % **`` and unary minus, on numbers only (text never takes part);
- comparisons ``== != < <= > >=`` (chains allowed; ordering on numbers only), ``x in [a, b]`` and
  ``not in`` (membership in a list), ``and``, ``or``,
  ``not`` on true/false values, and ``A if CONDITION else B``;
- the functions ``min max round int abs ceil floor`` on numbers, ``letter(i)`` (0 -> 'a', as Keras
  names block1a, block1b, ...), ``len(x)`` and ``channels(t)``;
- layer outputs (:class:`Tensor`, e.g. ``input`` inside a block, ``prev`` anywhere): ``t.shape``
  (batch first, channels last), ``t.shape[-1]`` and ``channels(t)`` (the last dimension);
- lists ``[a, b, c]`` and ``x[i]`` on lists and shapes: a table indexed by a var, as a family of
  models picks its per-size values (``${[1.0, 1.1, 1.2][size]}``).

Nothing is ever passed to ``eval``: the text is parsed with :mod:`ast` and only the node kinds
above are interpreted; everything else is refused with an :class:`ExpressionError`.

Every evaluation is bounded, because specs may come from anyone: the source is at most
``MAX_SOURCE`` characters and ``MAX_NODES`` syntax nodes, every number (constant, intermediate or
result) must be finite and within ``MAX_MAGNITUDE``, powers are checked *before* they are computed,
and ``round``'s digit count is limited. No other exception than ExpressionError escapes.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable
from typing import Any

_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda item, items: item in items,
    ast.NotIn: lambda item, items: item not in items,
}
_NUMERIC_FUNCS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
}
_CONSTANTS = {"true": True, "false": False}
_PLAIN = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_BRACED = re.compile(r"^\$\{(.*)\}$", re.S)
_PART = re.compile(r"\$\{([^{}]*)\}")
MAX_SOURCE = 200
MAX_NODES = 200  # syntax-tree nodes per expression
MAX_MAGNITUDE = 10**18  # no attribute is anywhere near this; bigger numbers are a mistake or an attack
MAX_NDIGITS = 30  # round(x, n): |n| at most this
ALLOWED = "numbers, names, lists [a, b][i], + - * / // % **, comparisons, `in` a list, and/or/not, `A if C else B`, " + ", ".join(
    [*_NUMERIC_FUNCS, "letter", "len", "channels"]
)


class ExpressionError(Exception):
    """An expression that cannot be evaluated; the message says why and what is allowed."""


class Tensor:
    """A layer's output as seen by an expression: its name, and its shape computed on demand.

    The shape is inferred only when an expression reads it (``input.shape``, ``channels(input)``),
    by the same catalog rules the analysis uses; ``shape_of`` raises :class:`ExpressionError` when
    the shape cannot be known.
    """

    def __init__(self, name: str, shape_of: Callable[[str], tuple]):
        self.name = name
        self._shape_of = shape_of

    @property
    def shape(self) -> tuple:
        return tuple(self._shape_of(self.name))

    def __repr__(self) -> str:
        return f"<output of `{self.name}`>"


def is_expression(value: object) -> bool:
    """True for `$name` and `${...}` texts (but not the references `$input` and `$prev`)."""
    return isinstance(value, str) and value.startswith("$") and value not in ("$input", "$prev")


def has_template(value: object) -> bool:
    """True for a text with `${...}` parts inside it, such as a name template `block${stage}a_`."""
    return isinstance(value, str) and _PART.search(value) is not None


def is_template(value: object) -> bool:
    """True for a text that mixes `${...}` parts with other text (`conv${stage}_block`, `${a}_${b}`):
    it stands for text, filled in by :func:`interpolate`, unlike one whole expression (`${2 * a}`),
    whose value keeps its kind."""
    return isinstance(value, str) and has_template(value) and _PART.fullmatch(value) is None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def names_read(value: object) -> set[str]:
    """The names a `$name`, a `${...}` or a text template reads: the words of its expression parts,
    quoted text left out (function names come along; callers look up the names they know)."""
    if not isinstance(value, str):
        return set()
    plain = _PLAIN.match(value)
    if plain:
        return {plain.group(1)}
    return {word for part in _PART.findall(value) for word in _WORD.findall(_QUOTED.sub("", part))}


def evaluate(text: str, env: dict) -> Any:
    """Evaluate ``$name`` or ``${expr}`` against ``env``."""
    m = _PLAIN.match(text)
    if m:
        return _name(m.group(1), env)
    m = _BRACED.match(text)
    if not m:
        raise ExpressionError(f"`{text}` is not an expression; write `$name` or `${{...}}`")
    return _evaluate_source(m.group(1), env)


def interpolate(text: str, env: dict) -> str:
    """Replace every `${...}` part of ``text`` by its value: `conv${stage}_block${i + 1}` -> `conv2_block1`.

    Each part must give a whole number or a text (a name cannot hold 2.5 or true).
    """

    def one(m: re.Match) -> str:
        value = _evaluate_source(m.group(1), env)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ExpressionError(f"`${{{m.group(1)}}}` gives {_show(value)}; a name part must be a whole "
                                  "number or a text")
        return str(value)

    return _PART.sub(one, text)


def truth(value: Any, what: str) -> bool:
    """``value`` as a condition: only true and false count (1, 'yes' or a shape do not)."""
    if isinstance(value, bool):
        return value
    raise ExpressionError(f"{what} must be true or false (got {_show(value)}); compare it, e.g. `${{x == 2}}`")


def _evaluate_source(source: str, env: dict) -> Any:
    tree = _parse(source.strip())
    try:
        return _eval(tree, env)
    except RecursionError:
        raise ExpressionError("expression nests too deeply") from None


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> ast.expr:
    """The checked syntax tree of an expression, parsed once per distinct text (blocks repeat their texts)."""
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"expression is too long ({MAX_SOURCE} characters at most)")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:  # ValueError: NUL bytes
        raise ExpressionError(f"invalid expression `{source}`: {getattr(exc, 'msg', None) or exc}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression is too complex ({MAX_NODES} parts at most)")
    return tree.body


def bounded(value: Any, what: str = "the result") -> Any:
    """``value`` unless it is a number that is not finite or larger than MAX_MAGNITUDE."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(f"{what} is not a finite number")
    if _is_number(value) and abs(value) > MAX_MAGNITUDE:
        raise ExpressionError(f"{what} is too large (more than 10^18 in size)")
    return value


def _power_fits(left: int | float, right: int | float) -> bool:
    """Whether ``left ** right`` stays within MAX_MAGNITUDE, judged before computing it."""
    if abs(left) <= 1 or right <= 0:
        return True  # |result| <= 1, or a fraction of a number already in bounds
    return right * math.log10(abs(left)) <= 18.5


def _name(name: str, env: dict) -> Any:
    if name in env:
        return env[name]
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    raise ExpressionError(_unknown(name, env))


def _unknown(name: str, env: dict) -> str:
    from nnspec.diagnostics import did_you_mean

    hint = did_you_mean(name, env)
    known = ", ".join(sorted(env)) or "none"
    return f"unknown name `{name}` (known: {known})" + (f"; {hint}" if hint else "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A value as the user would write it, with its kind where that explains an error."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "an unknown size (None)"
    if isinstance(value, tuple):
        return "the shape (" + ", ".join("None" if d is None else str(d) for d in value) + ")"
    if isinstance(value, Tensor):
        return f"the layer output `{value.name}`"
    if isinstance(value, list):
        return f"the list {value!r}"
    return repr(value)


def _source(node: ast.AST) -> str:
    return ast.unparse(node)


def _number(node: ast.AST, env: dict, what: str) -> int | float:
    value = _eval(node, env)
    if not _is_number(value):
        raise ExpressionError(f"{what} needs numbers, but `{_source(node)}` is {_show(value)}")
    return value


def _eval(node: ast.AST, env: dict) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return bounded(node.value, f"`{_source(node)}`")
    if isinstance(node, ast.Name):
        return _name(node.id, env)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _binary(node, env)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(node.operand, env, "a sign")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not truth(_eval(node.operand, env), f"`{_source(node.operand)}` after `not`")
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        for operand in node.values:  # short-circuit, as Python
            value = truth(_eval(operand, env), f"`{_source(operand)}` in `{'and' if is_and else 'or'}`")
            if value != is_and:
                return value
        return is_and
    if isinstance(node, ast.Compare) and all(type(op) in _CMP for op in node.ops):
        return _compare(node, env)
    if isinstance(node, ast.IfExp):
        chosen = node.body if truth(_eval(node.test, env), f"the condition `{_source(node.test)}`") else node.orelse
        return _eval(chosen, env)
    if isinstance(node, ast.Attribute) and node.attr == "shape":
        value = _eval(node.value, env)
        if not isinstance(value, Tensor):
            raise ExpressionError(f"`.shape` reads a layer output (such as `input`), but `{_source(node.value)}` "
                                  f"is {_show(value)}")
        return value.shape
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        return _subscript(node, env)
    if isinstance(node, ast.List):
        return _list(node, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node.func.id, node, env)
    raise ExpressionError(f"`{_source(node)}` is not allowed; use {ALLOWED}")


def _binary(node: ast.BinOp, env: dict) -> Any:
    what = "arithmetic"
    left, right = _number(node.left, env, what), _number(node.right, env, what)
    if isinstance(node.op, ast.Pow) and not _power_fits(left, right):
        raise ExpressionError(f"`{_source(node)}` is too large (more than 10^18 in size)")
    try:
        result = _BIN[type(node.op)](left, right)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in `{_source(node)}`") from None
    except OverflowError:
        raise ExpressionError(f"`{_source(node)}` is too large") from None
    if isinstance(result, complex):
        raise ExpressionError(f"`{_source(node)}` has no real value")
    if isinstance(result, float) and result.is_integer() and isinstance(node.op, ast.Div):
        result = int(result)
    return bounded(result, f"`{_source(node)}`")


def _compare(node: ast.Compare, env: dict) -> bool:
    left = _eval(node.left, env)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, env)
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right, list):
                raise ExpressionError(f"`{_source(node)}`: `in` looks in a list, e.g. `depth in [50, 101, 152]` "
                                      f"(got {_show(right)})")
        elif not isinstance(op, (ast.Eq, ast.NotEq)) and not (_is_number(left) and _is_number(right)):
            bad = left if not _is_number(left) else right
            raise ExpressionError(f"`{_source(node)}` orders {_show(bad)}; `<`, `<=`, `>`, `>=` compare numbers")
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            raise ExpressionError(f"`{_source(node)}` compares a layer output; compare its shape or channels")
        if not _CMP[type(op)](left, right):
            return False
        left = right
    return True


def _list(node: ast.List, env: dict) -> list:
    """A list literal (its length is bounded by MAX_NODES); it holds values, not layer outputs."""
    values = [_eval(element, env) for element in node.elts]
    for element, value in zip(node.elts, values, strict=True):
        if isinstance(value, Tensor):
            raise ExpressionError(f"a list holds numbers, texts, true/false or shapes, but `{_source(element)}` is "
                                  f"{_show(value)}")
    return values


def _subscript(node: ast.Subscript, env: dict) -> Any:
    value = _eval(node.value, env)
    if not isinstance(value, (tuple, list)):
        raise ExpressionError(f"`{_source(node.value)}` is {_show(value)}; only shapes and lists take `[index]`")
    index = _eval(node.slice, env)
    if not isinstance(index, int) or isinstance(index, bool):
        raise ExpressionError(f"an index must be a whole number (got {_show(index)} in `{_source(node)}`)")
    if not -len(value) <= index < len(value):
        raise ExpressionError(f"index {index} is out of range for {_show(value)} in `{_source(node)}`")
    return value[index]


def _call(func: str, node: ast.Call, env: dict) -> Any:
    if func in _NUMERIC_FUNCS:
        args = [_number(a, env, f"`{func}`") for a in node.args]
        if func in ("min", "max") and len(args) < 2:
            if not args:
                raise ExpressionError(f"`{_source(node)}` needs at least one number")
            return args[0]
        if func in ("abs", "int", "ceil", "floor") and len(args) != 1:
            raise ExpressionError(f"`{_source(node)}`: {func} takes one number, got {len(args)}")
        if func == "round" and len(args) == 2 and not (isinstance(args[1], int) and abs(args[1]) <= MAX_NDIGITS):
            raise ExpressionError(f"`{_source(node)}`: round's digit count must be a whole number from "
                                  f"-{MAX_NDIGITS} to {MAX_NDIGITS}")
        try:
            return bounded(_NUMERIC_FUNCS[func](*args), f"`{_source(node)}`")
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"`{_source(node)}`: {exc}") from None
    if len(node.args) != 1:
        raise ExpressionError(f"`{_source(node)}` is not allowed; use {ALLOWED}")
    if func == "letter":
        i = _eval(node.args[0], env)
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < 26:
            raise ExpressionError(f"`letter` takes a whole number from 0 to 25 (got {_show(i)})")
        return chr(ord("a") + i)
    if func == "len":
        value = _eval(node.args[0], env)
        if not isinstance(value, (tuple, list, str)):
            raise ExpressionError(f"`len` takes a shape, a list or a text (got {_show(value)})")
        return len(value)
    if func == "channels":
        value = _eval(node.args[0], env)
        if not isinstance(value, Tensor):
            raise ExpressionError(f"`channels` takes a layer output such as `input` (got {_show(value)})")
        return value.shape[-1]
    raise ExpressionError(f"`{_source(node)}` is not allowed; use {ALLOWED}")
