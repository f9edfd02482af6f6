"""What a SCIM connector reads from its system's properties, once, with SAP's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from provisor.connectors.base import ConnectorConfig
from provisor.connectors.http import setting
from provisor.connectors.properties import Properties
from provisor.connectors.scim.filters import split_unique

SCIM_MEDIA_TYPE = "application/scim+json"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_BULK_COUNT = 20
MAX_BULK_COUNT = 100
MEMBER_BATCH = 20000  # members added by one PATCH when no threshold is set


@dataclass(frozen=True, slots=True, kw_only=True)
class SCIMOptions:
    prefixes: tuple[str, ...]  # property prefixes, the system's own first
    content_type: str = SCIM_MEDIA_TYPE
    page_size: int = DEFAULT_PAGE_SIZE
    user_filter: str | None = None
    group_filter: str | None = None
    patch: bool = False
    if_match: bool = False
    bulk: bool = False
    bulk_count: int = DEFAULT_BULK_COUNT
    member_threshold: int | None = None  # above it, members are PATCHed in batches of it
    keep_nested_groups: bool = False
    members_paging: bool = False
    user_groups_paging: bool = False
    user_unique: tuple[str, ...] = ("userName",)
    group_unique: tuple[str, ...] = ("displayName",)
    members_additional_attributes: str | None = None  # IAS v1 membersAdditionalAttributes
    schema_discovery: bool = True  # a target leaves out what its /Schemas does not declare

    @classmethod
    def from_config(
        cls,
        config: ConnectorConfig,
        prefixes: tuple[str, ...],
        *,
        threshold: int | None = None,
        group_unique: str = "displayName",
        schema_discovery: bool = True,
    ) -> SCIMOptions:
        def text(name: str) -> str | None:
            return setting(config, prefixes, name)

        def one(name: str) -> Properties:
            value = text(name)
            return Properties({} if value is None else {name: value})

        def flag(name: str, default: bool = False) -> bool:
            return one(name).flag(name, default)

        def number(name: str, default: int | None) -> int | None:
            return one(name).number(name, default)

        page = number("page.size", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        bulk_count = number("bulk.operations.max.count", DEFAULT_BULK_COUNT)
        if bulk_count is None or not 1 <= bulk_count <= MAX_BULK_COUNT:
            bulk_count = DEFAULT_BULK_COUNT  # SAP resets a value above 100 to 20
        member_threshold = number("patch.group.members.above.threshold", threshold)
        if member_threshold is not None and member_threshold < 1:
            member_threshold = threshold
        return cls(
            prefixes=prefixes,
            content_type=text("content.type") or SCIM_MEDIA_TYPE,
            page_size=max(1, min(page, MAX_PAGE_SIZE)),
            user_filter=text("user.filter"),
            group_filter=text("group.filter"),
            patch=flag("support.patch.operation"),
            if_match=flag("include.if.match.wildcard.header"),
            bulk=flag("support.bulk.operation"),
            bulk_count=bulk_count,
            member_threshold=member_threshold,
            keep_nested_groups=flag("patch.group.members.of.nested.groups"),
            members_paging=flag("group.members.paging.enabled"),
            user_groups_paging=flag("user.groups.paging.enabled"),
            user_unique=split_unique(text("user.unique.attribute") or "userName"),
            group_unique=split_unique(text("group.unique.attribute") or group_unique),
            members_additional_attributes=text("group.members.additional.attributes"),
            schema_discovery=flag("schema.discovery", schema_discovery),
        )
