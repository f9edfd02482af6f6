"""Bounds on the work one SCIM request may ask for: filter size, value size, PATCH cost, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models.path import FilterNode, LogicalExpr, Not, ValuePath

from provisor.scim.errors import InvalidFilterError, InvalidValueError, TooManyError
from provisor.text import unstorable

# startIndex and count are 1-based 32-bit numbers here: both databases take them as offsets
# and limits, and a larger one is no request a real client makes.
MAX_INDEX = 2**31 - 1
# Integers compared in filters or stored in documents fit a signed 64-bit column.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The limits, with their defaults (settings: ``PROVISOR_SCIM_*``)."""

    filter_max_terms: int = 100
    filter_max_depth: int = 16
    filter_max_length: int = 10_000  # characters of the whole filter text
    filter_max_value_length: int = 1024  # characters of one compared value (LIKE pattern)
    value_max_length: int = 64 * 1024  # characters of one string attribute value
    patch_max_operations: int = 1000
    patch_max_comparisons: int = 200_000


DEFAULT_LIMITS = Limits()


def check_filter_text(text: str, limits: Limits) -> None:
    if len(text) > limits.filter_max_length:
        raise InvalidFilterError(
            f"The filter is longer than the limit of {limits.filter_max_length} characters."
        )
    problem = unstorable(text)
    if problem is not None:
        raise InvalidFilterError(f"The filter contains {problem}.")


def check_filter_tree(node: FilterNode, limits: Limits) -> None:
    """Refuse a filter with more comparisons, or deeper nesting, than the limits allow."""
    terms = 0
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limits.filter_max_depth:
            raise InvalidFilterError(
                f"The filter is nested deeper than the limit of {limits.filter_max_depth} levels."
            )
        if isinstance(current, LogicalExpr):
            stack.extend((term, depth + 1) for term in current.terms)
        elif isinstance(current, Not):
            stack.append((current.expr, depth + 1))
        elif isinstance(current, ValuePath):
            stack.append((current.val_filter, depth + 1))
        else:
            terms += 1
            if terms > limits.filter_max_terms:
                raise InvalidFilterError(
                    f"The filter has more than the limit of {limits.filter_max_terms} comparisons."
                )
            value = getattr(current, "value", None)
            if isinstance(value, str):
                if len(value) > limits.filter_max_value_length:
                    raise InvalidFilterError(
                        f"A filter value is longer than the limit of "
                        f"{limits.filter_max_value_length} characters."
                    )
                problem = unstorable(value)
                if problem is not None:
                    raise InvalidFilterError(f"A filter value contains {problem}.")
            if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
                raise InvalidFilterError(f"The filter value {value} is not a 64-bit integer.")


def check_index(name: str, value: int | None) -> int | None:
    """startIndex and count: a number the databases can take, or a clear 400."""
    if value is not None and abs(value) > MAX_INDEX:
        raise InvalidValueError(f"{name} must be a number no larger than {MAX_INDEX}.")
    return value


def check_string(value: str, where: str, limits: Limits) -> None:
    """A string value both databases can store, of bounded size."""
    if len(value) > limits.value_max_length:
        raise InvalidValueError(
            f"{where}: the value is longer than the limit of {limits.value_max_length} characters."
        )
    problem = unstorable(value)
    if problem is not None:
        raise InvalidValueError(f"{where}: the value contains {problem}.")


class Budget:
    """Counts the value comparisons of one PATCH request against its limit."""

    def __init__(self, limits: Limits) -> None:
        self.left = limits.patch_max_comparisons
        self.limit = limits.patch_max_comparisons

    def spend(self, comparisons: int) -> None:
        self.left -= comparisons
        if self.left < 0:
            raise TooManyError(
                f"The PATCH request needs more than the limit of {self.limit} value "
                "comparisons; send it as several smaller requests or replace the attribute."
            )
