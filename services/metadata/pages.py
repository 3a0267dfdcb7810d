"""Opaque keyset page tokens (AIP-158), bound to the listing that made them.

A token carries the sort key of the last row returned, signed with a key
derived from the internal secret over the listing's scope (method, parent
and filters). A token that was altered, or that another listing produced,
fails the check and is INVALID_ARGUMENT — it never silently restarts or
jumps inside some other result set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from depot.services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_MAC_BYTES = 16


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class PageTokens:
    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"depot page tokens v1", hashlib.sha256).digest()

    def _mac(self, scope: str, body: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\0" + body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, cursor: list[Any]) -> str:
        body = json.dumps(cursor, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(scope, body) + body).decode().rstrip("=")

    def decode(self, scope: str, token: str) -> list[Any] | None:
        """The cursor in ``token``; None for the first page (empty token)."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
            if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, self._mac(scope, body)):
                raise ValueError
            cursor = json.loads(body)
            if not isinstance(cursor, list):
                raise ValueError
            return cursor
        except (ValueError, binascii.Error):
            raise InvalidArgument(
                "invalid page_token: it is corrupt or belongs to another listing "
                "(the parent, filters or method differ)",
                field="page_token",
            ) from None

    def next(self, scope: str, rows: list[Any], size: int, key: Any) -> tuple[list[Any], str]:
        """Cuts ``rows`` (fetched with LIMIT size + 1) to a page and its next token."""
        if len(rows) <= size:
            return rows, ""
        page = rows[:size]
        return page, self.encode(scope, list(key(page[-1])))
