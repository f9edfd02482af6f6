"""Checking and normalising the attribute values of a resource against its schemas."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from provisor.scim.attributes import Attribute, AttrType, Mutability
from provisor.scim.errors import InvalidSyntaxError, InvalidValueError, MutabilityError
from provisor.scim.limits import (
    DEFAULT_LIMITS,
    MAX_INTEGER,
    MIN_INTEGER,
    Limits,
    check_string,
)
from provisor.scim.registry import ResourceType
from provisor.timestamps import format_datetime, parse_datetime
from provisor.types import JSONObject

_TRUE = {"true": True, "false": False}


def coerce(attr: Attribute, value: Any, where: str) -> Any:
    """Check one simple value against its attribute type; return it normalised."""
    kind = attr.type
    if kind in (AttrType.STRING, AttrType.REFERENCE):
        if isinstance(value, str):
            return value
    elif kind is AttrType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE:  # Entra sends "True"/"False"
            return _TRUE[value.lower()]
    elif kind is AttrType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is AttrType.DECIMAL:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif kind is AttrType.DATETIME:
        if isinstance(value, str):
            try:
                return format_datetime(parse_datetime(value))
            except (ValueError, OverflowError):
                pass
    elif kind is AttrType.BINARY:
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
                return value
            except (binascii.Error, ValueError):
                pass
    raise InvalidValueError(f"{where}: expected a {kind.value} value, got {_describe(value)}.")


def bare_value(attr: Attribute, value: Any) -> Any:
    """A single complex value sent as its bare ``value`` string, as the object it stands
    for: Microsoft Entra sends the enterprise ``manager`` as ``"<id>"``."""
    if (
        isinstance(value, str)
        and attr.is_complex
        and not attr.multi_valued
        and attr.sub("value") is not None
    ):
        return {"value": value}
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ResourceChecker:
    """Checks a resource body for one resource type, on create or replace.

    ``check`` returns a new document holding only known attributes under their canonical
    names, values normalised, read-only attributes dropped, required ones enforced and
    immutable ones compared with the stored document on replace.
    """

    def __init__(self, rt: ResourceType, limits: Limits = DEFAULT_LIMITS) -> None:
        self.rt = rt
        self.limits = limits

    def _coerce(self, attr: Attribute, value: Any, where: str) -> Any:
        checked = coerce(attr, value, where)
        if isinstance(checked, str):
            check_string(checked, where, self.limits)
        elif isinstance(checked, int) and not MIN_INTEGER <= checked <= MAX_INTEGER:
            raise InvalidValueError(f"{where}: {checked} is not a 64-bit integer.")
        return checked

    def check(self, body: Any, existing: JSONObject | None = None) -> JSONObject:
        if not isinstance(body, dict):
            raise InvalidSyntaxError("The resource must be a JSON object.")
        rt = self.rt
        schemas = body.get("schemas")
        if schemas is None:
            schemas = [rt.schema.id]
        if not isinstance(schemas, list) or not all(isinstance(x, str) for x in schemas):
            raise InvalidSyntaxError("'schemas' must be a list of schema URNs.")
        if rt.schema.id.lower() not in {x.lower() for x in schemas}:
            raise InvalidValueError(f"'schemas' must contain {rt.schema.id}.")
        out: JSONObject = {}
        ext_ids: list[str] = []
        for urn in schemas:
            if urn.lower() == rt.schema.id.lower():
                continue
            ext = rt.extension(urn)
            if ext is None:
                raise InvalidValueError(f"Unknown schema {urn!r} for a {rt.name}.")
            if ext.id not in ext_ids:
                ext_ids.append(ext.id)
        core_attrs: JSONObject = {}
        for key, value in body.items():
            lowered = key.lower()
            if lowered in ("schemas", "id", "meta") or value is None:
                continue
            if lowered == "externalid":
                core_attrs["externalId"] = self._coerce(_EXTERNAL_ID, value, "externalId")
                continue
            if lowered.startswith("urn:"):
                ext = rt.extension(key)
                if ext is None:
                    raise InvalidValueError(f"Unknown schema {key!r} for a {rt.name}.")
                if not isinstance(value, dict):
                    raise InvalidValueError(f"{key}: an extension must be a JSON object.")
                if ext.id not in ext_ids:
                    ext_ids.append(ext.id)
                checked = self._attributes(ext.attribute, value, ext.id)
                if checked:
                    out[ext.id] = checked
                continue
            attr = rt.schema.attribute(key)
            if attr is None:
                raise InvalidValueError(f"Unknown attribute {key!r} for a {rt.name}.")
            checked_value = self._value(attr, value, attr.name)
            if checked_value is not None:
                core_attrs[attr.name] = checked_value
        doc: JSONObject = {"schemas": [rt.schema.id, *[e for e in ext_ids if e in out]]}
        doc.update(core_attrs)
        doc.update({urn: out[urn] for urn in ext_ids if urn in out})
        self._required(doc)
        if existing is not None:
            self._immutable(doc, existing)
        return doc

    def _attributes(self, lookup: Any, value: JSONObject, where: str) -> JSONObject:
        out: JSONObject = {}
        for key, item in value.items():
            if item is None:
                continue
            attr = lookup(key)
            if attr is None:
                raise InvalidValueError(f"Unknown attribute {key!r} in {where}.")
            checked = self._value(attr, item, f"{where}:{attr.name}")
            if checked is not None:
                out[attr.name] = checked
        return out

    def _value(self, attr: Attribute, value: Any, where: str) -> Any:
        """Check an attribute's value; None means 'leave unassigned'."""
        if attr.mutability is Mutability.READ_ONLY:
            return None
        if attr.multi_valued:
            items = value if isinstance(value, list) else [value]
            checked = [self._single(attr, item, f"{where}[{i}]") for i, item in enumerate(items)]
            checked = [item for item in checked if item not in (None, {})]
            if attr.is_complex:
                primaries = sum(1 for item in checked if item.get("primary") is True)
                if primaries > 1:
                    raise InvalidValueError(f"{where}: at most one value may be primary.")
            return checked or None
        if isinstance(value, list):
            raise InvalidValueError(f"{where}: a single value is expected, not a list.")
        checked_single = self._single(attr, value, where)
        return None if checked_single == {} else checked_single

    def _single(self, attr: Attribute, value: Any, where: str) -> Any:
        if value is None:
            return None
        if not attr.is_complex:
            return self._coerce(attr, value, where)
        value = bare_value(attr, value)
        if not isinstance(value, dict):
            raise InvalidValueError(f"{where}: expected a complex value (a JSON object).")
        out: JSONObject = {}
        for key, item in value.items():
            if item is None:
                continue
            sub = attr.sub(key)
            if sub is None:
                raise InvalidValueError(f"{where}: unknown sub-attribute {key!r}.")
            if sub.mutability is Mutability.READ_ONLY:
                continue
            if isinstance(item, list | dict):
                raise InvalidValueError(f"{where}.{sub.name}: expected a {sub.type.value} value.")
            out[sub.name] = self._coerce(sub, item, f"{where}.{sub.name}")
        for sub in attr.sub_attributes:
            if sub.required and sub.name not in out:
                raise InvalidValueError(f"{where}.{sub.name} is required.")
        return out

    def _required(self, doc: JSONObject) -> None:
        for attr in self.rt.schema.attributes:
            if attr.required and attr.name not in doc:
                raise InvalidValueError(f"{attr.name} is required.")
        for ext in self.rt.extensions:
            if ext.id in doc:
                for attr in ext.attributes:
                    if attr.required and attr.name not in doc[ext.id]:
                        raise InvalidValueError(f"{ext.id}:{attr.name} is required.")

    def _immutable(self, doc: JSONObject, existing: JSONObject) -> None:
        """Immutable values already set must not change; omitted ones are kept, and so are
        the read-only values the server stored (such as userUuid)."""
        containers: list[tuple[tuple[Attribute, ...], JSONObject, JSONObject, str]] = [
            (self.rt.schema.attributes, doc, existing, "")
        ]
        for ext in self.rt.extensions:
            if ext.id in existing:
                target = doc.setdefault(ext.id, {})
                containers.append((ext.attributes, target, existing[ext.id], ext.id + ":"))
        for attrs, new, old, prefix in containers:
            for attr in attrs:
                if attr.name not in old:
                    continue
                if attr.mutability is Mutability.READ_ONLY:
                    new[attr.name] = old[attr.name]  # server-managed: kept as stored
                    continue
                if attr.mutability is not Mutability.IMMUTABLE:
                    continue
                if attr.name not in new:
                    new[attr.name] = old[attr.name]
                elif new[attr.name] != old[attr.name]:
                    raise MutabilityError(f"{prefix}{attr.name} is immutable.")
        for ext in self.rt.extensions:
            if ext.id in doc and not doc[ext.id]:
                del doc[ext.id]
            elif ext.id in doc and ext.id not in doc["schemas"]:
                doc["schemas"].append(ext.id)


_EXTERNAL_ID = Attribute(name="externalId", case_exact=True)
