"""Type aliases shared across the package."""

from typing import Any, TypeAlias

JSONObject: TypeAlias = dict[str, Any]
"""A decoded JSON object, such as a SCIM resource."""
