"""A system's properties as typed values: one reading of flags (``true``/``false``), whole
numbers and choices for every connector, job and proxy.

``Properties`` wraps the property values (text, as stored and shown) and, when it has them,
the connector type's property specifications: a value its specification refuses (a flag that
is neither true nor false, a number out of its range, a value outside the choices) raises
:class:`~provisor.errors.InputError` naming the property, while a property without a
specification reads leniently (a malformed value counts as absent). Absent and empty values
read as the default given, else the specification's default.

This module sits below ``connectors.base`` and ``connectors.types``: a specification is
anything with the fields of :class:`Spec` (``connectors.types.PropertySpec`` has them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from provisor.errors import InputError

TRUE, FALSE = "true", "false"


class Spec(Protocol):
    """What ``Properties`` reads of a property specification."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...  # "boolean", "integer", "choice"... (a StrEnum value)
    @property
    def default(self) -> str | None: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def minimum(self) -> int | None: ...
    @property
    def maximum(self) -> int | None: ...


class Properties(Mapping[str, str]):
    """Property values with typed accessors, checked against their specifications."""

    __slots__ = ("_specs", "_values")

    def __init__(self, values: Mapping[str, str], specs: Iterable[Spec] = ()) -> None:
        self._values = values
        self._specs = {spec.key: spec for spec in specs}

    # -- the mapping of texts ----------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # -- typed values ------------------------------------------------------------------------

    def text(self, key: str, default: str | None = None) -> str | None:
        """The value as given; ``default`` (else the specification's) when absent or empty."""
        value = self._values.get(key)
        if value is None or value == "":
            spec = self._specs.get(key)
            return default if default is not None or spec is None else spec.default
        return value

    def flag(self, key: str, default: bool | None = None) -> bool:
        """``true`` or ``false`` (any case, spaces around ignored); ``default`` (else the
        specification's, else false) when absent or empty."""
        value = self._values.get(key)
        spec = self._specs.get(key)
        if value is None or value.strip() == "":
            if default is not None:
                return default
            return spec is not None and (spec.default or "").strip().lower() == TRUE
        word = value.strip().lower()
        if word not in (TRUE, FALSE) and spec is not None and spec.kind == "boolean":
            raise InputError(f"{key}: expected true or false, not {value!r}.")
        return word == TRUE

    def number(self, key: str, default: int | None = None) -> int | None:
        """A whole number; ``default`` (else the specification's) when absent or empty. Out
        of the specification's range, or malformed for an integer property: InputError."""
        value = self._values.get(key)
        spec = self._specs.get(key)
        if value is None or value.strip() == "":
            if default is not None or spec is None or not spec.default:
                return default
            value = spec.default
        try:
            number = int(value.strip())
        except ValueError:
            if spec is not None and spec.kind == "integer":
                raise InputError(f"{key}: expected a whole number, not {value!r}.") from None
            return default
        if spec is not None:
            if spec.minimum is not None and number < spec.minimum:
                raise InputError(f"{key}: at least {spec.minimum}, not {number}.")
            if spec.maximum is not None and number > spec.maximum:
                raise InputError(f"{key}: at most {spec.maximum}, not {number}.")
        return number

    def bounded(self, key: str, default: int, *, least: int = 0, most: int) -> int:
        """A whole number brought within ``least``..``most``; ``default`` when absent or
        malformed."""
        found = self.number(key, default)
        return default if found is None else max(least, min(found, most))

    def choice(self, key: str, default: str | None = None) -> str | None:
        """One of the specification's choices (InputError otherwise)."""
        value = self.text(key, default)
        spec = self._specs.get(key)
        if value is not None and spec is not None and spec.choices and value not in spec.choices:
            raise InputError(f"{key}: one of {', '.join(spec.choices)}, not {value!r}.")
        return value
