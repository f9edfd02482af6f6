"""The grammar of SAP's transformation expressions: Jayway JSONPath and filter conditions.

One lark grammar covers both, since paths carry filters (``[?(@.primary == true)]``) and
conditions carry paths. It yields the syntax tree of :mod:`provisor.transform.syntax`;
:mod:`.jsonpath` and :mod:`.conditions` compile that tree into Python closures once per
document. (No JSONPath library reads Jayway's dialect — multi-key projection, ``.length()``,
regex literals, SAP's EMPTY/IN/NIN — nor writes through paths: see
docs/decisions/0006-transformation-expressions.md.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, VisitError

from provisor.transform import syntax as x

_GRAMMAR = r"""
?start: expr

?expr: or_expr
?or_expr: and_expr ("||" and_expr)*                 -> or_
?and_expr: not_expr ("&&" not_expr)*                -> and_
?not_expr: "!" not_expr                             -> not_
         | test

?test: operand COMPARE operand                      -> compare
     | operand "=~" REGEX                           -> regex_match
     | operand EMPTY BOOLEAN                        -> empty
     | operand IN list_lit                          -> in_
     | operand NIN list_lit                         -> nin
     | operand CONTAINS operand                     -> contains
     | operand                                      -> truthy
     | "(" expr ")"

?operand: path
        | call
        | literal
        | list_lit

call: NAME "(" [argument ("," argument)*] ")"
?argument: path | literal | prop_key
prop_key: NAME ("." NAME)*

literal: STRING                                     -> string
       | NUMBER                                     -> number
       | BOOLEAN                                    -> boolean
       | NULL                                       -> null
list_lit: "[" [literal ("," literal)*] "]"

// ---- JSONPath (Jayway)
path: ROOT segment* [function]
ROOT.3: "$" | "@"
?segment: "." NAME                                  -> key
        | "." "*"                                   -> wildcard
        | ".." NAME                                 -> deep_key
        | ".." "*"                                  -> deep_wildcard
        | "." "[" selector "]"
        | "[" selector "]"
?selector: STRING ("," STRING)*                     -> keys
         | SIGNED_INT ("," SIGNED_INT)*             -> indexes
         | [SIGNED_INT] ":" [SIGNED_INT]            -> slice
         | "*"                                      -> wildcard
         | "?" "(" expr ")"                         -> filter
function: "." NAME "(" ")"

COMPARE: "===" | "!==" | "==" | "!=" | "<=" | ">=" | "<" | ">"
EMPTY.2: /(?i:empty)(?![A-Za-z0-9_])/
IN.2: /(?i:in)(?![A-Za-z0-9_])/
NIN.2: /(?i:nin)(?![A-Za-z0-9_])/
CONTAINS.2: /(?i:contains)(?![A-Za-z0-9_])/
BOOLEAN.2: /(?i:true|false)(?![A-Za-z0-9_])/
NULL.2: /null(?![A-Za-z0-9_])/
NAME: /[A-Za-z_$\u00c0-\uffff][A-Za-z0-9_$\-\u00c0-\uffff]*/
STRING: /'(?:[^'\\]|\\.)*'/ | /"(?:[^"\\]|\\.)*"/
NUMBER: /-?\d+(\.\d+)?([eE][+-]?\d+)?/
SIGNED_INT: /-?\d+/
REGEX: /\/(?:[^\/\\\n]|\\.)*\/[a-zA-Z]*/

%ignore /[ \t\r\n]+/
"""


def _unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars, "")
        out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
    return "".join(out)


@v_args(inline=True)
class _Builder(Transformer[Token, Any]):
    def or_(self, *terms: x.Expr) -> x.Expr:
        return terms[0] if len(terms) == 1 else x.Or(tuple(terms))

    def and_(self, *terms: x.Expr) -> x.Expr:
        return terms[0] if len(terms) == 1 else x.And(tuple(terms))

    def not_(self, expr: x.Expr) -> x.Expr:
        return x.Not(expr)

    def compare(self, left: x.Operand, op: Token, right: x.Operand) -> x.Expr:
        return x.Compare(str(op), left, right)

    def regex_match(self, operand: x.Operand, regex: Token) -> x.Expr:
        text = str(regex)
        pattern, _, flags = text[1:].rpartition("/")
        return x.RegexMatch(operand, pattern, flags)

    def empty(self, operand: x.Operand, _kw: Token, value: Token) -> x.Expr:
        return x.Empty(operand, str(value).lower() == "true")

    def in_(self, operand: x.Operand, _kw: Token, values: x.ListLiteral) -> x.Expr:
        return x.In(operand, values, negate=False)

    def nin(self, operand: x.Operand, _kw: Token, values: x.ListLiteral) -> x.Expr:
        return x.In(operand, values, negate=True)

    def contains(self, left: x.Operand, _kw: Token, right: x.Operand) -> x.Expr:
        return x.Contains(left, right)

    def truthy(self, operand: x.Operand) -> x.Expr:
        return x.Truthy(operand)

    def call(self, name: Token, *args: Any) -> x.Operand:
        return x.Call(str(name), tuple(a for a in args if a is not None))

    def prop_key(self, *names: Token) -> x.Operand:
        return x.PropertyKey(".".join(str(n) for n in names))

    def string(self, token: Token) -> x.Operand:
        return x.Literal(_unquote(str(token)))

    def number(self, token: Token) -> x.Operand:
        text = str(token)
        return x.Literal(float(text) if any(c in text for c in ".eE") else int(text))

    def boolean(self, token: Token) -> x.Operand:
        return x.Literal(str(token).lower() == "true")

    def null(self, _token: Token) -> x.Operand:
        return x.Literal(None)

    def list_lit(self, *items: x.Literal | None) -> x.ListLiteral:
        return x.ListLiteral(tuple(item.value for item in items if item is not None))

    def path(self, root: Token, *rest: Any) -> x.Path:
        segments = tuple(r for r in rest if isinstance(r, x.Segment))
        function = next((r for r in rest if isinstance(r, str)), None)
        return x.Path(str(root), segments, function)

    def key(self, name: Token) -> x.Segment:
        return x.Key(str(name))

    def wildcard(self) -> x.Segment:
        return x.Wildcard()

    def deep_key(self, name: Token) -> x.Segment:
        return x.DeepScan(str(name))

    def deep_wildcard(self) -> x.Segment:
        return x.DeepScan(None)

    def keys(self, *names: Token) -> x.Segment:
        if len(names) == 1:
            return x.Key(_unquote(str(names[0])))
        return x.Keys(tuple(_unquote(str(n)) for n in names))

    def indexes(self, *numbers: Token) -> x.Segment:
        if len(numbers) == 1:
            return x.Index(int(numbers[0]))
        return x.Indexes(tuple(int(n) for n in numbers))

    def slice(self, start: Token | None, end: Token | None) -> x.Segment:
        return x.Slice(
            int(start) if start is not None else None, int(end) if end is not None else None
        )

    def filter(self, expr: x.Expr) -> x.Segment:
        return x.Filter(expr)

    def function(self, name: Token) -> str:
        return str(name)


_PARSER = Lark(
    _GRAMMAR, start=["start", "path"], parser="lalr", lexer="contextual", maybe_placeholders=True
)
_BUILDER = _Builder()


class ExpressionSyntaxError(ValueError):
    """An expression or a path does not follow the grammar."""


def _parse(text: str, start: str) -> Any:
    try:
        return _BUILDER.transform(_PARSER.parse(text, start=start))
    except VisitError as exc:
        raise ExpressionSyntaxError(str(exc.orig_exc)) from exc
    except LarkError as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if column is not None else ""
        raise ExpressionSyntaxError(f"invalid syntax{where}") from exc


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> x.Expr:
    """A condition (filter expression) as a syntax tree; ExpressionSyntaxError if invalid."""
    return _parse(text, "start")  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def parse_path(text: str) -> x.Path:
    """A JSONPath as a syntax tree; ExpressionSyntaxError if invalid."""
    return _parse(text, "path")  # type: ignore[no-any-return]
