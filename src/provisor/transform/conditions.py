"""Conditions (spec §1.5): Jayway filter expressions with SAP's additions, compiled once.

Operators: ``== != === !== < <= > >= =~ && || !``, ``EMPTY``, ``IN``, ``NIN``, ``contains``,
``.length()``, comparisons with ``[]``, and the functions ``isValidEmail``,
``isApplicationSpecificGroup``, ``isRegularGroup``, ``isAttributeWithOptionalPrefix`` and
``isAttributeWithMandatoryPrefix``. ``@`` is the current element (inside filters, and in the
conditions of functions applied to elements). ``${var}`` in string literals and regexes takes
the variable's value when the condition runs.

Comparisons follow Jayway: ``==`` compares a number and a numeric string as numbers
(``'1' == 1``), ``===`` also requires the same type; a missing value equals nothing, so
``!=`` and ``NIN`` are true for it and every other comparison false.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from provisor.transform import syntax as x
from provisor.transform.grammar import parse_expression
from provisor.transform.javaregex import compile_java
from provisor.transform.paths import MISSING, Env, Reader, Test, compile_path

Value = Callable[[Any, Any, Env], Any]

SAP_GROUP = "urn:ietf:params:scim:schemas:extension:sap:2.0:Group"
EMAIL = (  # SAP's regex, its quotation mark included
    r"[a-zA-Z0-9!#$%&‘'*+/=?^_`{|}~-]+(?>\.[a-zA-Z0-9!#$%&‘'*+/=?^_`{|}~-]+)*@"  # noqa: RUF001
    r"(?>[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]?\.)+[a-zA-Z0-9](?>[a-zA-Z0-9-]*[a-zA-Z0-9])?"
)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def expand(text: str, env: Env) -> str:
    """Replace ``${name}`` with the variable's value (``null`` when it has none)."""
    if "${" not in text:
        return text

    def value(match: re.Match[str]) -> str:
        found = env.variables.get(match.group(1))
        return "null" if found is None else _text(found)

    return _VARIABLE.sub(value, text)


def _text(value: Any) -> str:
    """A variable's value in text: as JSON writes it (true, an object as JSON), never
    Python's spelling (True, None, {'a': 1})."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def compile_reader(path: x.Path | str) -> Reader:
    """A reader of a path (see ``paths``), its filters compiled as conditions."""
    return compile_path(path, compile_expression)


def compile_condition(text: str) -> Test:
    """Compile a condition string; ExpressionSyntaxError or ValueError if invalid."""
    return compile_expression(parse_expression(text))


def compile_expression(expr: x.Expr) -> Test:
    if isinstance(expr, x.Or):
        terms = [compile_expression(t) for t in expr.terms]
        return lambda r, c, e: any(t(r, c, e) for t in terms)
    if isinstance(expr, x.And):
        terms = [compile_expression(t) for t in expr.terms]
        return lambda r, c, e: all(t(r, c, e) for t in terms)
    if isinstance(expr, x.Not):
        inner = compile_expression(expr.expr)
        return lambda r, c, e: not inner(r, c, e)
    if isinstance(expr, x.Compare):
        return _compare(expr)
    if isinstance(expr, x.RegexMatch):
        return _regex(expr)
    if isinstance(expr, x.Empty):
        operand = _operand(expr.operand)
        expected = expr.expected
        return lambda r, c, e: _is_empty(operand(r, c, e)) is expected
    if isinstance(expr, x.In):
        operand = _operand(expr.operand)
        values = expr.values.values
        negate = expr.negate

        def in_(r: Any, c: Any, e: Env) -> bool:
            value = operand(r, c, e)
            found = value is not MISSING and any(_loose_equal(value, v) for v in values)
            return found is not negate

        return in_
    if isinstance(expr, x.Contains):
        left, right = _operand(expr.left), _operand(expr.right)
        return lambda r, c, e: _contains(left(r, c, e), right(r, c, e))
    if isinstance(expr, x.Truthy):
        operand = _operand(expr.operand)
        return lambda r, c, e: _truthy(operand(r, c, e))
    raise ValueError(f"unsupported expression {expr!r}")


# -- operands ----------------------------------------------------------------------------------


def _operand(node: Any) -> Value:
    if isinstance(node, x.Path):
        return compile_reader(node)
    if isinstance(node, x.Literal):
        constant = node.value
        if isinstance(constant, str) and "${" in constant:
            return lambda r, c, e: expand(constant, e)
        return lambda r, c, e: constant
    if isinstance(node, x.ListLiteral):
        values = list(node.values)
        return lambda r, c, e: values
    if isinstance(node, x.Call):
        return _call(node)
    if isinstance(node, x.PropertyKey):
        raise ValueError(f"{node.name}: a property key is only an argument of a function")
    raise ValueError(f"unsupported operand {node!r}")


def _call(call: x.Call) -> Value:
    name, args = call.name, call.args
    if name == "isValidEmail":
        _arity(call, 1)
        read = _operand(args[0])
        email = compile_java(EMAIL)

        def valid(r: Any, c: Any, e: Env) -> bool:
            value = read(r, c, e)
            values = value if isinstance(value, list) else [value]
            return bool(values) and all(
                isinstance(v, str) and email.fullmatch(v) is not None for v in values
            )

        return valid
    if name == "isApplicationSpecificGroup":
        _arity(call, 0)

        def application_group(r: Any, c: Any, e: Env) -> bool:
            wanted = e.properties.get("ips.application.id")
            ext = r.get(SAP_GROUP) if isinstance(r, dict) else None
            found = ext.get("applicationId") if isinstance(ext, dict) else None
            return bool(wanted) and found == wanted

        return application_group
    if name == "isRegularGroup":
        _arity(call, 0)

        def regular(r: Any, c: Any, e: Env) -> bool:
            ext = r.get(SAP_GROUP) if isinstance(r, dict) else None
            if not isinstance(ext, dict):
                return True
            return not ext.get("supportedOperations") or not ext.get("applicationId")

        return regular
    if name in ("isAttributeWithOptionalPrefix", "isAttributeWithMandatoryPrefix"):
        _arity(call, 2)
        read = _operand(args[0])
        key = args[1].name if isinstance(args[1], x.PropertyKey) else None
        if key is None:
            if isinstance(args[1], x.Literal) and isinstance(args[1].value, str):
                key = args[1].value
            else:
                raise ValueError(f"{name}: the second argument is a property key")
        mandatory = name == "isAttributeWithMandatoryPrefix"

        def prefixed(r: Any, c: Any, e: Env) -> bool:
            value = read(r, c, e)
            prefix = e.properties.get(key)
            if value is MISSING or value is None or prefix is None:
                return not mandatory
            return isinstance(value, str) and value.startswith(prefix)

        return prefixed
    raise ValueError(f"unknown condition function {name}()")


def _arity(call: x.Call, count: int) -> None:
    if len(call.args) != count:
        raise ValueError(f"{call.name}() takes {count} argument(s), not {len(call.args)}")


# -- semantics -----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _loose_equal(left: Any, right: Any) -> bool:
    if left is MISSING or right is MISSING:
        return False
    if _is_number(left) or _is_number(right):
        if isinstance(left, bool) or isinstance(right, bool):
            return False
        a, b = _as_number(left), _as_number(right)
        return a is not None and b is not None and a == b
    return bool(left == right)


def _strict_equal(left: Any, right: Any) -> bool:
    if left is MISSING or right is MISSING:
        return False
    kinds = {bool: 0, int: 1, float: 1, str: 2, list: 3, dict: 4, type(None): 5}
    if kinds.get(type(left), -1) != kinds.get(type(right), -2):
        return False
    return _loose_equal(left, right)


def _order(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 when the values compare (numbers, or strings); None otherwise."""
    if left is MISSING or right is MISSING or left is None or right is None:
        return None
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    a, b = _as_number(left), _as_number(right)
    if a is None or b is None or isinstance(left, bool) or isinstance(right, bool):
        return None
    return (a > b) - (a < b)


def _compare(expr: x.Compare) -> Test:
    left, right = _operand(expr.left), _operand(expr.right)
    op = expr.op
    if op == "==":
        return lambda r, c, e: _loose_equal(left(r, c, e), right(r, c, e))
    if op == "!=":
        return lambda r, c, e: not _loose_equal(left(r, c, e), right(r, c, e))
    if op == "===":
        return lambda r, c, e: _strict_equal(left(r, c, e), right(r, c, e))
    if op == "!==":
        return lambda r, c, e: not _strict_equal(left(r, c, e), right(r, c, e))
    accept = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (1, 0)}[op]

    def ordered(r: Any, c: Any, e: Env) -> bool:
        return _order(left(r, c, e), right(r, c, e)) in accept

    return ordered


def _regex(expr: x.RegexMatch) -> Test:
    operand = _operand(expr.operand)
    pattern, flags = expr.pattern, expr.flags
    if "${" not in pattern:
        compiled = compile_java(pattern, flags)  # fails now if invalid

        def match(r: Any, c: Any, e: Env) -> bool:
            value = operand(r, c, e)
            return isinstance(value, str) and compiled.fullmatch(value) is not None

        return match

    def templated(r: Any, c: Any, e: Env) -> bool:
        value = operand(r, c, e)
        if not isinstance(value, str):
            return False
        try:
            return compile_java(expand(pattern, e), flags).fullmatch(value) is not None
        except ValueError:
            return False

    return templated


def _is_empty(value: Any) -> bool:
    return value is MISSING or value is None or value == "" or value == [] or value == {}


def _contains(container: Any, item: Any) -> bool:
    if item is MISSING:
        return False
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        return any(_loose_equal(element, item) for element in container)
    return False


def _truthy(value: Any) -> bool:
    """A bare operand: a path that exists (non-null), or a function that said yes."""
    if value is MISSING or value is None or value is False:
        return False
    if isinstance(value, list):
        return bool(value)  # an indefinite path: something matched
    return True
