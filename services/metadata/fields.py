"""Rules for the fields a caller sets on versions and runs (domain; no grpc).

Descriptions, metadata and run configs, tags, TTL modes, and who may set a
TTL. Checked before anything is written, so a refused request changes
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from depot.services.common import validate
from depot.services.common.errors import ErrorReason, InvalidArgument, PermissionDenied

from . import names
from .access import ADMIN, EntityAccess
from .accounts import check_ttl

MAX_METADATA_BYTES = 64 * 1024
MAX_DESCRIPTION = 4096
MAX_TAGS = 64
TTL_MODES = ("", "forever", "duration", "inherit")


def check_description(description: str, field: str = "description") -> str:
    return validate.check_text(description, field, MAX_DESCRIPTION)


def check_metadata(metadata_json: str, field: str = "metadata_json") -> dict[str, Any]:
    """A JSON object that jsonb and json.dumps can hold (validate.parse_json)."""
    if not metadata_json:
        return {}
    value: dict[str, Any] = validate.parse_json(metadata_json, field, max_bytes=MAX_METADATA_BYTES, object_only=True)
    return value


def check_ttl_mode(mode: str, ttl: timedelta | None) -> tuple[bool, timedelta | None]:
    """(inherit, own ttl) for a requested mode; "" means duration when a ttl is
    given, else inherit the team default."""
    if mode not in TTL_MODES:
        raise InvalidArgument(f"invalid ttl mode {mode!r}", field="ttl_mode")
    if not mode:
        mode = "duration" if ttl is not None else "inherit"
    if mode == "duration":
        if ttl is None:
            raise InvalidArgument("ttl_mode DURATION needs a ttl", field="ttl")
        return False, check_ttl(ttl)
    if ttl is not None:
        raise InvalidArgument(f"ttl_mode {mode.upper()} takes no ttl", field="ttl")
    return mode == "inherit", None


def check_tags(tags: list[str], field: str = "tags") -> list[str]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags per version", field=field)
    return sorted({names.check_part(t, field, "tag") for t in tags})


def check_aliases(aliases: list[str]) -> None:
    """Aliases a caller may set by hand (not ``latest``, not ``vN``)."""
    for a in aliases:
        names.check_settable_alias(a)


def ttl_permission(found: EntityAccess) -> None:
    """Refuses a TTL choice to a non-admin where the entity keeps TTLs to admins."""
    if found.ttl_policy == "admins" and (found.role or 0) < ADMIN:
        raise PermissionDenied(
            f"only admins of {found.name!r} may set TTLs (its ttl_policy is 'admins')",
            field="ttl",
            reason=ErrorReason.TTL_ADMINS_ONLY,
        )
