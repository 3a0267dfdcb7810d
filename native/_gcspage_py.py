"""Pure-Python twin of the GCS listing-page parser (``_gcspage.pyx``).

Parses one JSON API ``objects.list`` response body (``{"items": [...],
"nextPageToken": ...}``) into a columnar page with the same row layout as
the S3 ``ListPage``, so ``ManifestWriter.add_page`` appends it without a
Python object per key. Per object it keeps ``name``, ``size``, ``md5Hash``,
``generation`` and ``crc32c``; every other member (the whole resource when
the server ignores ``fields=``, as emulators do) is skipped.

The grammar both implementations share:

- the body is UTF-8 JSON (RFC 8259; no BOM, no NaN/Infinity, at most 64
  nested arrays/objects) whose top level is an object; a top-level
  ``"error"`` member makes it an error document;
- ``items``, when present, is an array of objects; ``nextPageToken`` a string;
- per item: ``name`` a non-empty string; ``size`` a decimal-digit string or a
  JSON integer token of digits only (leading zeros allowed in the string),
  below 2**63; ``generation`` digits the same way, of any length,
  when present (kept as its digits); ``md5Hash`` and ``crc32c`` strings when
  present, a non-empty ``md5Hash`` the base64 of 16 bytes (22 characters of
  the standard alphabet and ``==``: it becomes the entry's digest); the kept
  strings must be valid Unicode (no lone surrogate);
- a member repeated in one object: the last one counts (as ``json.loads``).

Anything else raises ``GCSPageError`` with the same message from both.
"""

from __future__ import annotations

import json
import re
from array import array
from typing import Any

__all__ = ["GCSListPage", "GCSPageError", "parse_gcs_page"]

# Row layout (int64 columns per object), shared with the S3 ListPage so the
# manifest writer's add_page reads both: key, md5Hash (the "etag" column),
# generation (the "version id" column), crc32c (the S3 "last modified"
# column) as (offset, length) into the strings buffer, then the size.
NI = 9
_SIZE_LIMIT = 1 << 63
_MD5_B64 = re.compile(r"[A-Za-z0-9+/]{22}==")
_MAX_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class GCSPageError(ValueError):
    """The body is not a complete, well-formed GCS listing page (or is a GCS error document)."""


class _Num(str):
    """A JSON number token's text (so integer rules can be checked on the token itself)."""


def _too_deep(text: str) -> bool:
    depth = 0
    for b in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if b in "[{" else -1
        if depth > _MAX_DEPTH:
            return True
    return False


def _digits(v: Any) -> str | None:
    if isinstance(v, str) and v and v.isascii() and v.isdigit():
        return str(v)
    return None


class GCSListPage:
    """One parsed page: the objects in listing order plus what is needed to fetch the next page."""

    __slots__ = (
        "kind",
        "count",
        "is_truncated",
        "next_page_token",
        "last_key",
        "first_without_md5",
        "_buf",
        "_idx",
        "_strs",
    )

    def __init__(self) -> None:
        self.kind = "gcs"
        self.count = 0
        self.is_truncated = False
        self.next_page_token = ""
        self.last_key = ""
        # Index of the first object without an md5Hash (a composite object), -1 if none.
        self.first_without_md5 = -1
        self._buf = b""
        self._idx = b""
        self._strs: list[tuple[str, str, str, str, int]] = []

    def _row(self, i: int) -> tuple[str, str, str, str, int]:
        if i < 0 or i >= self.count:
            raise IndexError(f"entry index {i} out of range for a page of {self.count}")
        return self._strs[i]

    def key(self, i: int) -> str:
        return self._row(i)[0]

    def md5_hash(self, i: int) -> str:
        return self._row(i)[1]

    def etag(self, i: int) -> str:
        """The digest column ``add_page`` records: the md5Hash (W&B's GCS digest)."""
        return self._row(i)[1]

    def generation(self, i: int) -> str:
        return self._row(i)[2]

    def version_id(self, i: int) -> str:
        """The version column ``add_page`` records: the generation."""
        return self._row(i)[2]

    def crc32c(self, i: int) -> str:
        return self._row(i)[3]

    def size(self, i: int) -> int:
        return self._row(i)[4]

    def keys(self) -> list[str]:
        return [r[0] for r in self._strs]

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<GCSListPage count={self.count} truncated={self.is_truncated} last_key={self.last_key!r}>"

    def _raw(self) -> tuple[bytes, bytes, int]:
        """(strings, index, count) for ``ManifestWriter.add_page``; not public API."""
        return self._buf, self._idx, self.count


def _clean(s: str) -> str:
    """``s``, or "" when it holds a lone surrogate (it could not be shown)."""
    try:
        s.encode()
    except UnicodeEncodeError:
        return ""
    return str(s)


def _bad(what: str) -> GCSPageError:
    return GCSPageError(f"malformed GCS listing: {what}")


def _utf8(s: str, what: str) -> bytes:
    try:
        return s.encode()
    except UnicodeEncodeError:
        raise _bad(f"{what} is not valid Unicode") from None


def parse_gcs_page(body: bytes) -> GCSListPage:
    """Parses an ``objects.list`` response body.

    Raises:
        GCSPageError: the body is not JSON, not a listing, malformed, or a GCS
            error document (its code and message are in the text).
    """
    try:
        text = bytes(body).decode("utf-8")
        if _too_deep(text):
            raise ValueError("nested too deep")
        doc = json.loads(text, parse_int=_Num, parse_float=_Num, parse_constant=_reject)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("invalid JSON") from None
    if not isinstance(doc, dict):
        raise _bad("the top level is not an object")
    if "error" in doc:
        err = doc["error"]
        code = message = ""
        if isinstance(err, dict):
            c, m = err.get("code"), err.get("message")
            code = _clean(c) if isinstance(c, str) else ""  # _Num is a str: the number's text
            message = _clean(m) if isinstance(m, str) and not isinstance(m, _Num) else ""
        raise GCSPageError(f"GCS error {code}: {message}")
    page = GCSListPage()
    token = doc.get("nextPageToken")
    if token is not None:
        if not isinstance(token, str) or isinstance(token, _Num):
            raise _bad("nextPageToken is not a string")
        _utf8(token, "nextPageToken")
        page.next_page_token = token
        page.is_truncated = bool(token)
    items = doc.get("items")
    if items is None:
        return page
    if not isinstance(items, list):
        raise _bad("items is not an array")
    buf = bytearray()
    idx = array("q")
    rows = page._strs
    for n, it in enumerate(items):
        if not isinstance(it, dict):
            raise _bad(f"items[{n}] is not an object")
        name = it.get("name")
        if not isinstance(name, str) or isinstance(name, _Num) or not name:
            raise _bad(f"items[{n}] has no name")
        kb = _utf8(name, f"items[{n}].name")
        size = _digits(it.get("size"))
        if size is None or len(size.lstrip("0")) > 19 or int(size) >= _SIZE_LIMIT:
            raise _bad(f"bad or missing size for object {name!r}")
        gen = it.get("generation")
        if gen is None:
            gen = ""
        elif (gen := _digits(gen)) is None:
            raise _bad(f"bad generation for object {name!r}")
        strs = []
        for field in ("md5Hash", "crc32c"):
            v = it.get(field)
            if v is None:
                v = ""
            elif not isinstance(v, str) or isinstance(v, _Num):
                raise _bad(f"{field} of object {name!r} is not a string")
            strs.append(v)
        md5, crc = strs
        if md5 and not _MD5_B64.fullmatch(md5):
            raise _bad(f"md5Hash of object {name!r} is not a base64 md5")
        mb = _utf8(md5, f"md5Hash of object {name!r}")
        cb = _utf8(crc, f"crc32c of object {name!r}")
        gb = gen.encode()
        # Strings in buffer order key, generation, md5Hash, crc32c (the compiled
        # parser's), each recorded in its column.
        cols = [0] * NI
        for col, b in ((0, kb), (4, gb), (2, mb), (6, cb)):
            cols[col], cols[col + 1] = len(buf), len(b)
            buf += b
        cols[8] = int(size)
        idx.extend(cols)
        if not md5 and page.first_without_md5 < 0:
            page.first_without_md5 = n
        rows.append((name, md5, gen, crc, int(size)))
    page.count = len(rows)
    page.last_key = rows[-1][0] if rows else ""
    page._buf = bytes(buf)
    page._idx = idx.tobytes()
    return page


def _reject(name: str) -> Any:
    raise ValueError(name)
