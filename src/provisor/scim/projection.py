"""The ``attributes`` and ``excludedAttributes`` parameters (RFC 7644 §3.4.2.5, §3.9)."""

from __future__ import annotations

from dataclasses import dataclass

from provisor.scim.attributes import Attribute, Returned
from provisor.scim.errors import SCIMError
from provisor.scim.registry import ResourceType, resolve
from provisor.types import JSONObject

# A selected attribute: (extension URN or None for core/common, attribute name, sub or None)
_Key = tuple[str | None, str, str | None]


@dataclass(frozen=True, slots=True)
class Projection:
    """Which attributes a response carries."""

    rt: ResourceType
    include: frozenset[_Key] | None = None  # None: the default set
    exclude: frozenset[_Key] = frozenset()
    whole_extensions: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, rt: ResourceType, attributes: str | None, excluded: str | None) -> Projection:
        include, inc_ext = _parse_list(rt, attributes)
        exclude, _ = _parse_list(rt, excluded)
        if include is not None and not include and not inc_ext:
            include = None  # a value of only spaces and commas is ignored (SAP, §5.4)
        return cls(rt=rt, include=include, exclude=exclude or frozenset(), whole_extensions=inc_ext)

    @property
    def is_default(self) -> bool:
        return self.include is None and not self.exclude

    def wants(self, attr_name: str) -> bool:
        """Whether a core attribute (like members or groups) is part of the response."""
        lowered = attr_name.lower()
        if any(k[0] is None and k[1].lower() == lowered and k[2] is None for k in self.exclude):
            return False
        if self.include is None:
            return True
        return any(k[0] is None and k[1].lower() == lowered for k in self.include)

    def requests(self, urn: str, attr_name: str) -> bool:
        """Whether ``attributes`` names an extension attribute (for returned=request ones)."""
        if self.include is None:
            return False
        lowered = attr_name.lower()
        return urn in self.whole_extensions or any(
            k[0] == urn and k[1] == lowered for k in self.include
        )

    def apply(self, doc: JSONObject) -> JSONObject:
        """The response document for a full resource document."""
        rt = self.rt
        out: JSONObject = {}
        for key, value in doc.items():
            if key in ("schemas", "id"):
                out[key] = value
                continue
            ext = rt.extension(key) if key.startswith("urn:") else None
            if ext is not None:
                picked = {}
                for attr_name, attr_value in value.items():
                    attr = ext.attribute(attr_name)
                    if attr is None:
                        continue
                    kept = self._pick(ext.id, attr, attr_value)
                    if kept is not None:
                        picked[attr_name] = kept
                if picked:
                    out[key] = picked
                continue
            res = resolve(rt, None, key, None, error=_Ignore)
            kept = self._pick(None, res.attribute, value)
            if kept is not None:
                out[key] = kept
        return out

    def _pick(self, urn: str | None, attr: Attribute, value: object) -> object:
        if attr.returned is Returned.NEVER:
            return None
        if attr.returned is Returned.ALWAYS:
            return value
        name = attr.name.lower()
        if (urn, name, None) in self.exclude:
            return None
        subs_excluded = {k[2] for k in self.exclude if k[0] == urn and k[1] == name and k[2]}
        if self.include is None:
            if attr.returned is Returned.REQUEST:
                return None
            return _drop_subs(value, subs_excluded) if subs_excluded else value
        if urn is not None and urn in self.whole_extensions:
            return value
        if (urn, name, None) in self.include:
            return value
        subs = {k[2] for k in self.include if k[0] == urn and k[1] == name and k[2]}
        if not subs:
            return None
        return _keep_subs(value, subs)


class _Ignore(SCIMError):
    """Unknown attribute."""


def _parse_list(rt: ResourceType, raw: str | None) -> tuple[frozenset[_Key] | None, frozenset[str]]:
    if raw is None:
        return None, frozenset()
    keys: set[_Key] = set()
    extensions: set[str] = set()
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        whole = rt.extension(item)
        if whole is not None:
            extensions.add(whole.id)
            continue
        uri, _, rest = item.rpartition(":") if item.lower().startswith("urn:") else ("", "", item)
        attr, _, sub = rest.partition(".")
        try:
            res = resolve(rt, uri or None, attr, sub or None, error=_Ignore)
        except _Ignore:
            continue  # unknown attributes select nothing
        owner = res.schema.id if res.schema is not None and res.schema is not rt.schema else None
        keys.add((owner, res.attribute.name.lower(), res.sub.name.lower() if res.sub else None))
    return frozenset(keys), frozenset(extensions)


def _keep_subs(value: object, subs: set[str]) -> object:
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if k.lower() in subs}
        return kept or None
    if isinstance(value, list):
        items = [_keep_subs(item, subs) for item in value]
        return [item for item in items if item] or None
    return value


def _drop_subs(value: object, subs: set[str]) -> object:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() not in subs} or None
    if isinstance(value, list):
        items = [_drop_subs(item, subs) for item in value]
        return [item for item in items if item] or None
    return value
