"""A safe evaluator for computed attributes: `$base`, `${2 * base}`, `${classes}`.

Only numbers, names bound in ``vars``/block parameters, + - * / // % **, unary minus,
parentheses and min/max/round/int are allowed. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
import re

_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS = {"min": min, "max": max, "round": round, "int": int, "abs": abs}
_PLAIN = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_BRACED = re.compile(r"^\$\{(.*)\}$", re.S)


class ExpressionError(Exception):
    pass


def is_expression(value) -> bool:
    return isinstance(value, str) and value.startswith("$") and value != "$input"


def evaluate(text: str, env: dict):
    """Evaluate ``$name`` or ``${expr}`` against ``env``."""
    m = _PLAIN.match(text)
    if m:
        name = m.group(1)
        if name not in env:
            raise ExpressionError(_unknown(name, env))
        return env[name]
    m = _BRACED.match(text)
    if not m:
        raise ExpressionError(f"`{text}` is not an expression; write `$name` or `${{...}}`")
    source = m.group(1).strip()
    if len(source) > 200:
        raise ExpressionError("expression is too long (200 characters at most)")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid expression `{source}`: {exc.msg}") from None
    return _eval(tree.body, env)


def _unknown(name, env) -> str:
    from nnspec.diagnostics import did_you_mean

    hint = did_you_mean(name, env)
    known = ", ".join(sorted(env)) or "none"
    return f"unknown name `{name}` (known: {known})" + (f"; {hint}" if hint else "")


def _eval(node, env):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExpressionError(_unknown(node.id, env))
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise ExpressionError("exponent too large")
        try:
            result = _BIN[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None
        except TypeError:
            raise ExpressionError("arithmetic needs numbers") from None
        if isinstance(result, float) and result.is_integer() and isinstance(node.op, ast.Div):
            result = int(result)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
    ):
        return _FUNCS[node.func.id](*[_eval(a, env) for a in node.args])
    raise ExpressionError(
        f"`{ast.unparse(node)}` is not allowed; use numbers, names and + - * / // % ** min max round int abs"
    )
