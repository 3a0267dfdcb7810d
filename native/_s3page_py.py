"""Pure-Python twin of the S3 listing-page parser (``_s3page.pyx``).

Parses one ListObjectsV2 (``<ListBucketResult>``) or ListObjectVersions
(``<ListVersionsResult>``) response body, or an Azure List Blobs
(``<EnumerationResults>``) one: Azure nests an object one level deeper
(``Blobs/Blob/Properties``) and names its fields differently, so its elements
are mapped onto the S3 fields (``Name`` → key, ``Etag``, ``Content-Length`` →
size, ``VersionId``) and ``NextMarker`` is the page's continuation token. This is not a general XML parser: it
accepts what S3, MinIO and moto emit (an optional XML declaration, comments,
elements with attributes, text with the five named entities and numeric
character references, self-closing elements) and rejects everything else —
DOCTYPE, CDATA, processing instructions inside the document, unbalanced or
truncated markup — with ``S3PageError``. A page is all or nothing: a body that
does not parse completely never yields a partial page.

Both implementations share this grammar and its error messages, so they accept
and reject exactly the same bodies.
"""

from __future__ import annotations

__all__ = ["ListPage", "S3PageError", "parse_list_page"]

_WS = b" \t\r\n"
_NAMED = {b"amp": b"&", b"lt": b"<", b"gt": b">", b"quot": b'"', b"apos": b"'"}
_HEX = b"0123456789abcdefABCDEF"

# Root element -> page kind; and the element holding one object in that kind.
_ROOTS = {
    b"ListBucketResult": "v2",
    b"ListVersionsResult": "versions",
    b"EnumerationResults": "azure",
    b"Error": "error",
}
_TOP_FIELDS = {
    b"IsTruncated",
    b"NextContinuationToken",
    b"NextKeyMarker",
    b"NextVersionIdMarker",
    b"EncodingType",
    b"Code",
    b"Message",
}
_ENTRY_FIELDS = {b"Key", b"ETag", b"Size", b"LastModified", b"VersionId", b"IsLatest"}
# Azure List Blobs: fields of <Blob> (depth 4) and of <Blob><Properties> (depth 5),
# stored under the S3 field they stand for.
_AZ_BLOB_FIELDS = {b"Name": b"Key", b"VersionId": b"VersionId"}
_AZ_PROP_FIELDS = {b"Etag": b"ETag", b"Content-Length": b"Size", b"Last-Modified": b"LastModified"}
# <Blob><Metadata><hdi_isfolder>true</...>: a directory stub (ADLS Gen2), not a file; W&B skips it.
_AZ_FOLDER = b"hdi_isfolder"
# Elements whose only captured child is a prefix (S3 <CommonPrefixes><Prefix>, Azure <BlobPrefix><Name>).
_PREFIX_HOLDERS = (b"CommonPrefixes", b"BlobPrefix")


_MAX_DEPTH = 256


def _show(name: bytes) -> str:
    return name[:64].decode("latin-1")


def _valid_utf8(b: bytes | bytearray) -> bool:
    try:
        b.decode()
    except UnicodeDecodeError:
        return False
    return True


class S3PageError(ValueError):
    """The body is not a complete, well-formed S3 listing page (or is an S3 error document)."""


def _decode_text(raw: bytes) -> bytes:
    """Resolves entity and character references in raw element text."""
    amp = raw.find(b"&")
    if amp < 0:
        return raw
    out = bytearray()
    pos = 0
    n = len(raw)
    while amp >= 0:
        out += raw[pos:amp]
        semi = raw.find(b";", amp + 1, min(n, amp + 12))
        if semi < 0:
            raise S3PageError("malformed XML: unterminated entity reference")
        name = raw[amp + 1 : semi]
        rep = _NAMED.get(name)
        if rep is None:
            cp = -1
            if name[:2] == b"#x" and len(name) > 2 and all(c in _HEX for c in name[2:]):
                cp = int(name[2:], 16)
            elif name[:1] == b"#" and len(name) > 1 and name[1:].isdigit():
                cp = int(name[1:])
            if cp <= 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise S3PageError(f"malformed XML: bad entity reference &{name.decode('latin-1')};")
            rep = chr(cp).encode()
        out += rep
        pos = semi + 1
        amp = raw.find(b"&", pos)
    out += raw[pos:]
    return bytes(out)


def _utf8(b: bytes) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise S3PageError("malformed XML: text is not valid UTF-8") from None


def _unquote_plus(s: str) -> str:
    """Percent-decoding as botocore applies it to EncodingType=url listings."""
    if "%" not in s and "+" not in s:
        return s
    b = s.encode()
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 0x2B:  # '+'
            out.append(0x20)
        elif c == 0x25 and i + 2 < n and b[i + 1] in _HEX and b[i + 2] in _HEX:
            out.append(int(b[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(c)
        i += 1
    return _utf8(bytes(out))


class ListPage:
    """One parsed listing page: the kept objects plus the fields needed to fetch the next page."""

    __slots__ = (
        "kind",
        "count",
        "is_truncated",
        "next_continuation_token",
        "next_key_marker",
        "next_version_id_marker",
        "common_prefixes",
        "last_key",
        "_keys",
        "_etags",
        "_sizes",
        "_vids",
        "_mtimes",
    )

    def __init__(self) -> None:
        self.kind = ""
        self.count = 0
        self.is_truncated = False
        self.next_continuation_token = ""
        self.next_key_marker = ""
        self.next_version_id_marker = ""
        self.common_prefixes: list[str] = []
        self.last_key = ""
        self._keys: list[str] = []
        self._etags: list[str] = []
        self._sizes: list[int] = []
        self._vids: list[str] = []
        self._mtimes: list[str] = []

    def _check(self, i: int) -> int:
        if not 0 <= i < self.count:
            raise IndexError(f"entry index {i} out of range for a page of {self.count}")
        return i

    def key(self, i: int) -> str:
        return self._keys[self._check(i)]

    def etag(self, i: int) -> str:
        return self._etags[self._check(i)]

    def size(self, i: int) -> int:
        return self._sizes[self._check(i)]

    def version_id(self, i: int) -> str:
        return self._vids[self._check(i)]

    def last_modified(self, i: int) -> str:
        return self._mtimes[self._check(i)]

    def keys(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (
            f"<ListPage kind={self.kind} count={self.count} truncated={self.is_truncated} last_key={self.last_key!r}>"
        )


def _strip_etag(s: str) -> str:
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    return s


def parse_list_page(body: bytes) -> ListPage:
    """Parses a ListObjectsV2, ListObjectVersions or Azure List Blobs response body.

    Raises:
        S3PageError: the body is truncated, malformed, not a listing, or an S3
            ``<Error>`` document (its code and message are in the text).
    """
    data = bytes(body)
    n = len(data)
    pos = 3 if data[:3] == b"\xef\xbb\xbf" else 0
    while pos < n and data[pos] in _WS:
        pos += 1
    if data.startswith(b"<?xml", pos):
        end = data.find(b"?>", pos)
        if end < 0:
            raise S3PageError("truncated XML: unterminated XML declaration")
        pos = end + 2

    stack: list[bytes] = []
    kind = ""
    root_done = False
    entry_name = b""
    # Per-object fields of the element currently open at depth 2.
    entry: dict[bytes, bytes] = {}
    top: dict[bytes, bytes] = {}
    prefixes: list[bytes] = []
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    cap: bytes | None = None  # name of the element whose text we are capturing
    cap_depth = -1
    cap_buf = bytearray()
    ent_depth = 2  # depth of one object's element: 3 in Azure's <Blobs><Blob>
    # Checked once the structure is known good, so both implementations report
    # a truncated body as truncated even when it also holds bad UTF-8.
    utf8_bad = False

    while pos < n:
        lt = data.find(b"<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            chunk = data[pos:lt]
            if not stack:
                if chunk.strip(_WS):
                    raise S3PageError("malformed XML: text outside the root element")
            elif cap is not None and len(stack) == cap_depth:
                cap_buf += _decode_text(chunk)
            pos = lt
            if pos >= n:
                break
        # pos is at '<'
        if data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                raise S3PageError("truncated XML: unterminated comment")
            pos = end + 3
            continue
        if pos + 1 >= n:
            raise S3PageError("truncated XML: document ends inside a tag")
        c = data[pos + 1]
        if c == 0x21 or c == 0x3F:  # '!' or '?'
            raise S3PageError("unsupported XML: DOCTYPE, CDATA or processing instruction")
        if c == 0x2F:  # '/': end tag
            q = pos + 2
            while q < n and data[q] not in _WS and data[q] != 0x3E:
                q += 1
            name = data[pos + 2 : q]
            while q < n and data[q] in _WS:
                q += 1
            if q >= n:
                raise S3PageError("truncated XML: document ends inside a tag")
            if data[q] != 0x3E:
                raise S3PageError("malformed XML: bad end tag")
            if not stack or stack[-1] != name:
                raise S3PageError(f"malformed XML: unexpected end tag </{_show(name)}>")
            pos = q + 1
            depth = len(stack)
            if cap is not None and depth == cap_depth:
                utf8_bad |= not _valid_utf8(cap_buf)
                if depth == 2:
                    top[cap] = bytes(cap_buf)
                elif entry_name in _PREFIX_HOLDERS:
                    prefixes.append(bytes(cap_buf))
                else:
                    entry[cap] = bytes(cap_buf)
                cap = None
            elif depth == ent_depth and entry_name:
                if entry_name not in _PREFIX_HOLDERS:
                    entries.append((entry_name, entry))
                entry_name = b""
            stack.pop()
            if not stack:
                root_done = True
            continue
        # start tag
        q = pos + 1
        while q < n and data[q] not in _WS and data[q] not in b"/>":
            q += 1
        name = data[pos + 1 : q]
        if not name:
            raise S3PageError("malformed XML: empty tag name")
        empty = False
        while True:
            while q < n and data[q] in _WS:
                q += 1
            if q >= n:
                raise S3PageError("truncated XML: document ends inside a tag")
            c = data[q]
            if c == 0x3E:
                q += 1
                break
            if c == 0x2F:
                if q + 1 >= n:
                    raise S3PageError("truncated XML: document ends inside a tag")
                if data[q + 1] != 0x3E:
                    raise S3PageError("malformed XML: bad empty-element tag")
                empty = True
                q += 2
                break
            # attribute: name = "value" | 'value'
            a = q
            while q < n and data[q] not in _WS and data[q] not in b"=/>":
                q += 1
            if q == a:
                raise S3PageError("malformed XML: bad attribute")
            while q < n and data[q] in _WS:
                q += 1
            if q >= n:
                raise S3PageError("truncated XML: document ends inside a tag")
            if data[q] != 0x3D:
                raise S3PageError("malformed XML: attribute without value")
            q += 1
            while q < n and data[q] in _WS:
                q += 1
            if q >= n:
                raise S3PageError("truncated XML: document ends inside a tag")
            quote = data[q]
            if quote != 0x22 and quote != 0x27:
                raise S3PageError("malformed XML: unquoted attribute value")
            end = data.find(bytes([quote]), q + 1)
            if end < 0:
                raise S3PageError("truncated XML: document ends inside a tag")
            q = end + 1
        pos = q
        if root_done:
            raise S3PageError("malformed XML: content after the root element")
        depth = len(stack) + 1  # depth of this element
        if depth == 1:
            k = _ROOTS.get(name)
            if k is None:
                raise S3PageError(f"not an S3 listing page: root element <{_show(name)}>")
            kind = k
            if kind == "azure":
                ent_depth = 3
        elif kind == "azure":
            if depth == 2:
                if name == b"NextMarker":
                    cap, cap_depth = name, 2
            elif depth == 3 and stack[1] == b"Blobs" and name in (b"Blob", b"BlobPrefix"):
                entry_name = name
                entry = {}
            elif depth == 4 and entry_name and cap is None:
                if entry_name == b"BlobPrefix":
                    if name == b"Name":
                        cap, cap_depth = name, 4
                elif name in _AZ_BLOB_FIELDS:
                    cap, cap_depth = _AZ_BLOB_FIELDS[name], 4
            elif depth == 5 and entry_name == b"Blob" and cap is None and stack[3] == b"Properties":
                if name in _AZ_PROP_FIELDS:
                    cap, cap_depth = _AZ_PROP_FIELDS[name], 5
            elif depth == 5 and entry_name == b"Blob" and cap is None and stack[3] == b"Metadata":
                if name == _AZ_FOLDER:
                    cap, cap_depth = b"IsFolder", 5
        elif depth == 2:
            if name in _TOP_FIELDS:
                cap, cap_depth = name, 2
            elif (
                name == b"CommonPrefixes"
                or (kind == "v2" and name == b"Contents")
                or (kind == "versions" and (name == b"Version" or name == b"DeleteMarker"))
            ):
                entry_name = name
                entry = {}
        elif depth == 3 and entry_name and cap is None:
            if entry_name == b"CommonPrefixes":
                if name == b"Prefix":
                    cap, cap_depth = name, 3
            elif name in _ENTRY_FIELDS:
                cap, cap_depth = name, 3
        if cap is not None and cap_depth == depth:
            cap_buf = bytearray()
        if empty:
            # Same bookkeeping as "<name></name>".
            if cap is not None and cap_depth == depth:
                if depth == 2:
                    top[cap] = b""
                elif entry_name in _PREFIX_HOLDERS:
                    prefixes.append(b"")
                else:
                    entry[cap] = b""
                cap = None
            elif depth == ent_depth and entry_name:
                if entry_name not in _PREFIX_HOLDERS:
                    entries.append((entry_name, entry))
                entry_name = b""
            if depth == 1:
                root_done = True
        else:
            if len(stack) >= _MAX_DEPTH:
                raise S3PageError("malformed XML: elements nested too deeply")
            stack.append(name)

    if stack:
        raise S3PageError("truncated XML: document ends before the root element is closed")
    if not kind:
        raise S3PageError("not an S3 listing page: no root element")
    if utf8_bad:
        raise S3PageError("malformed XML: text is not valid UTF-8")
    if kind == "error":
        code = _utf8(top.get(b"Code", b""))
        msg = _utf8(top.get(b"Message", b""))
        raise S3PageError(f"S3 error {code}: {msg}")

    page = ListPage()
    page.kind = kind
    url = _utf8(top.get(b"EncodingType", b"")) == "url"

    def text(b: bytes, decode_url: bool = False) -> str:
        s = _utf8(b)
        return _unquote_plus(s) if decode_url and url else s

    trunc = top.get(b"IsTruncated", b"false")
    if trunc == b"true":
        page.is_truncated = True
    elif trunc != b"false":
        raise S3PageError("malformed listing: IsTruncated is neither true nor false")
    page.next_continuation_token = text(top.get(b"NextContinuationToken", b""))
    if kind == "azure":
        # Azure has no IsTruncated: a page with a NextMarker has a next page.
        page.next_continuation_token = text(top.get(b"NextMarker", b""))
        page.is_truncated = bool(page.next_continuation_token)
    key_field, size_field = (b"Name", b"Content-Length") if kind == "azure" else (b"Key", b"Size")
    page.next_key_marker = text(top.get(b"NextKeyMarker", b""), True)
    page.next_version_id_marker = text(top.get(b"NextVersionIdMarker", b""))
    page.common_prefixes = [text(p, True) for p in prefixes]
    for ename, f in entries:
        raw_key = f.get(b"Key")
        if raw_key is None:
            raise S3PageError(f"malformed listing: <{ename.decode()}> without <{key_field.decode()}>")
        key = text(raw_key, True)
        page.last_key = key
        if ename == b"DeleteMarker":
            continue
        raw_size = f.get(b"Size")
        if raw_size is None or not raw_size.isdigit() or len(raw_size) > 19 or not raw_size.isascii():
            raise S3PageError(f"malformed listing: bad or missing <{size_field.decode()}> for key {key!r}")
        size = int(raw_size)
        if size >= 1 << 63:
            raise S3PageError(f"malformed listing: bad or missing <{size_field.decode()}> for key {key!r}")
        etag = _strip_etag(text(f.get(b"ETag", b"")))
        mtime = text(f.get(b"LastModified", b""))
        vid = text(f.get(b"VersionId", b""))
        if ename == b"Version" and f.get(b"IsLatest") != b"true":
            continue
        if f.get(b"IsFolder") == b"true":
            continue
        if kind == "v2":
            vid = ""
        page._keys.append(key)
        page._etags.append(etag)
        page._sizes.append(size)
        page._vids.append(vid)
        page._mtimes.append(mtime)
    page.count = len(page._keys)
    return page
