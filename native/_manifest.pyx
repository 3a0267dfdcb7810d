# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled manifest codec; the twin and the format spec are in ``_manifest_py.py``.

Output is byte-identical to the twin: the same varints, the same blocks, and
the blocks compressed by the very same ``zlib.compress(payload, 1)`` call.
Per entry nothing but the C buffers is touched; ``add_page`` reads a compiled
``ListPage``'s columns directly and creates no Python object per key.
"""

import zlib

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

from depot.native._manifest_py import (
    ALGORITHMS,
    BLOCK_PAYLOAD_BYTES,
    DEFAULT_BLOCK_ENTRIES,
    DIGEST_PREFIX,
    MAGIC,
    ManifestEntry,
    ManifestError,
    MAX_BLOCK_ENTRIES,
    MAX_COMPONENT,
    MAX_PATH,
    MIN_ENTRY_BYTES,
    PATH_PROBLEMS as _PATH_PROBLEMS,
    ManifestSummary,
    check_digest_pair,
)

# A C constant: it is compared once per entry written.
cdef size_t _BLOCK_PAYLOAD_BYTES = BLOCK_PAYLOAD_BYTES

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    bint PyUnicode_IS_ASCII(object s)

cdef extern from "depot_hash.h" nogil:
    ctypedef struct depot_md5_ctx:
        pass
    ctypedef struct XXH3_state_t:
        pass
    ctypedef struct XXH128_hash_t:
        pass
    ctypedef struct XXH128_canonical_t:
        unsigned char digest[16]
    void depot_md5_init(depot_md5_ctx *c)
    void depot_md5_update(depot_md5_ctx *c, const void *p, size_t n)
    void depot_md5_final(depot_md5_ctx *c, unsigned char *out)
    XXH3_state_t *XXH3_createState()
    void XXH3_freeState(XXH3_state_t *s)
    void XXH3_128bits_reset(XXH3_state_t *s)
    void XXH3_128bits_update(XXH3_state_t *s, const void *p, size_t n)
    XXH128_hash_t XXH3_128bits_digest(const XXH3_state_t *s)
    void XXH128_canonicalFromHash(XXH128_canonical_t *dst, XXH128_hash_t h)

cdef dict _CODE = {name: i for i, name in enumerate(ALGORITHMS)}
cdef object _compress = zlib.compress
cdef bytes _HEX = b"0123456789abcdef"
cdef uint64_t _U64_MAX = 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------- growable buffer

cdef struct Buf:
    char *p
    size_t len
    size_t cap


cdef int buf_reserve(Buf *b, size_t extra) except -1:
    cdef size_t need = b.len + extra, c
    cdef char *q
    if need <= b.cap:
        return 0
    c = b.cap * 2 if b.cap else 4096
    while c < need:
        c *= 2
    q = <char *>realloc(b.p, c)
    if q == NULL:
        raise MemoryError()
    b.p = q
    b.cap = c
    return 0


cdef inline void buf_varint(Buf *b, uint64_t n) noexcept:
    # Caller reserved 10 bytes.
    while n >= 0x80:
        b.p[b.len] = <char>((n & 0x7F) | 0x80)
        b.len += 1
        n >>= 7
    b.p[b.len] = <char>n
    b.len += 1


cdef inline void buf_bytes(Buf *b, const char *s, size_t n) noexcept:
    # Caller reserved 10 + n bytes.
    buf_varint(b, n)
    memcpy(b.p + b.len, s, n)
    b.len += n


cdef inline int buf_set(Buf *b, const char *s, size_t n) except -1:
    b.len = 0
    buf_reserve(b, n)
    memcpy(b.p, s, n)
    b.len = n
    return 0


# ---------------------------------------------------------------- artifact digest

cdef inline bint _forbidden(const unsigned char *s, size_t n) noexcept:
    # C0 and DEL are single bytes; C1 (U+0080..U+009F) is 0xC2 0x80..0x9F in UTF-8.
    # This keeps one entry to one "path:digest" line; it does not make the
    # digest an identity of the entries (':' may sit in a path and in a
    # reference's URI digest): the twin's comment says why, and what does.
    cdef size_t i
    cdef unsigned char c
    for i in range(n):
        c = s[i]
        if c < 0x20 or c == 0x7F:
            return True
        if c == 0xC2 and i + 1 < n and 0x80 <= s[i + 1] <= 0x9F:
            return True
    return False


cdef int _check_pair(const char *p, size_t pl, const char *d, size_t dl) except -1:
    """The twin's check_digest_pair on UTF-8 bytes (see the comment there)."""
    if _forbidden(<const unsigned char *>p, pl) or _forbidden(<const unsigned char *>d, dl):
        # The twin words the error, so both implementations raise the same message.
        check_digest_pair(PyUnicode_DecodeUTF8(p, pl, NULL), PyUnicode_DecodeUTF8(d, dl, NULL))
        raise ManifestError("ambiguous artifact digest input")
    return 0


cdef class ArtifactDigester:
    """The W&B manifest-v1 artifact digest, fed one (path, digest) pair at a time in path order."""

    cdef readonly str algorithm
    cdef bint _md5
    cdef depot_md5_ctx _m
    cdef XXH3_state_t *_x
    cdef Buf _line

    def __cinit__(self, algorithm):
        if algorithm == "md5":
            self._md5 = True
            depot_md5_init(&self._m)
        elif algorithm == "xxh3_128":
            self._md5 = False
            self._x = XXH3_createState()
            if self._x == NULL:
                raise MemoryError()
            XXH3_128bits_reset(self._x)
        else:
            raise ManifestError(
                f"artifact digest algorithm must be md5 or xxh3_128, not {algorithm!r}"
            )
        self.algorithm = algorithm
        self._feed(PyBytes_AS_STRING(DIGEST_PREFIX), PyBytes_GET_SIZE(DIGEST_PREFIX))

    def __dealloc__(self):
        if self._x != NULL:
            XXH3_freeState(self._x)
        free(self._line.p)

    cdef inline void _feed(self, const char *p, size_t n) noexcept:
        if self._md5:
            depot_md5_update(&self._m, p, n)
        else:
            XXH3_128bits_update(self._x, p, n)

    cdef int _pair(self, const char *path, size_t pl, const char *dg, size_t dl) except -1:
        # One update per pair: "path:digest\n".
        self._line.len = 0
        buf_reserve(&self._line, pl + dl + 2)
        memcpy(self._line.p, path, pl)
        self._line.p[pl] = b":"
        memcpy(self._line.p + pl + 1, dg, dl)
        self._line.p[pl + 1 + dl] = b"\n"
        self._feed(self._line.p, pl + dl + 2)
        return 0

    def update(self, str path, str digest):
        cdef Py_ssize_t pl, dl
        cdef const char *p = PyUnicode_AsUTF8AndSize(path, &pl)
        cdef const char *d = PyUnicode_AsUTF8AndSize(digest, &dl)
        _check_pair(p, pl, d, dl)
        self._pair(p, pl, d, dl)

    def hexdigest(self):
        cdef unsigned char raw[16]
        cdef depot_md5_ctx m
        cdef XXH128_canonical_t c
        cdef char hx[32]
        cdef const char *h = PyBytes_AS_STRING(_HEX)
        cdef int i
        if self._md5:
            m = self._m  # finalizing a copy keeps the digester usable
            depot_md5_final(&m, raw)
        else:
            XXH128_canonicalFromHash(&c, XXH3_128bits_digest(self._x))
            memcpy(raw, c.digest, 16)
        for i in range(16):
            hx[2 * i] = h[raw[i] >> 4]
            hx[2 * i + 1] = h[raw[i] & 15]
        return PyUnicode_DecodeASCII(hx, 32, NULL)


def artifact_digest(str algorithm, pairs):
    """Digest of sorted (path, digest) pairs; the caller sorts."""
    d = ArtifactDigester(algorithm)
    for path, digest in pairs:
        d.update(path, digest)
    return d.hexdigest()


# ---------------------------------------------------------------- writer

# The rules of depot.core.entry_paths.check_entry_path, applied to a path's
# UTF-8 bytes while it is written (ManifestWriter(check_paths=True)), so a
# listing of millions of keys is validated in the pass that writes it rather
# than by a second Python pass over the stored segment (15-19 s at 10M).
# Codes are reported in check_entry_path's order; the twin words the message.
cdef enum:
    _P_OK = 0
    _P_UTF8 = 1
    _P_EMPTY = 2
    _P_NUL = 3
    _P_CONTROL = 4
    _P_ABSOLUTE = 5
    _P_LONG = 6
    _P_DOTDOT = 7
    _P_DOT = 8
    _P_COMPONENT = 9

cdef size_t _MAX_PATH = MAX_PATH
cdef size_t _MAX_COMPONENT = MAX_COMPONENT


cdef bint _utf8_valid(const unsigned char *s, size_t n) noexcept nogil:
    """Strict UTF-8, as Python's codec: no overlongs, surrogates or code points past U+10FFFF."""
    cdef size_t i = 0
    cdef unsigned char c, c1
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
        elif 0xC2 <= c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return False
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if i + 3 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
                return False
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return False
            i += 4
        else:
            return False
    return True


cdef int _path_problem(const unsigned char *s, size_t n, uint32_t *cp) noexcept nogil:
    cdef size_t i, start, lead
    cdef unsigned char c
    cdef bint dotdot = False, dot = False, component = False
    if not _utf8_valid(s, n):
        return _P_UTF8
    if n == 0:
        return _P_EMPTY
    for i in range(n):
        if s[i] == 0:
            return _P_NUL
    for i in range(n):
        c = s[i]
        if c < 0x20 or c == 0x7F:
            cp[0] = c
            return _P_CONTROL
        # C1 is U+0080..U+009F: 0xC2 then the code point itself as the second byte.
        if c == 0xC2 and i + 1 < n and s[i + 1] <= 0x9F:
            cp[0] = s[i + 1]
            return _P_CONTROL
    # "Absolute": a leading '/' or a second *character* ':' (a drive letter).
    c = s[0]
    lead = 1 if c < 0x80 else 2 if c < 0xE0 else 3 if c < 0xF0 else 4
    if c == b"/" or (n > lead and s[lead] == b":"):
        return _P_ABSOLUTE
    if n > _MAX_PATH:
        return _P_LONG
    start = 0
    for i in range(n + 1):
        if i < n and s[i] != b"/":
            continue
        if i - start == 2 and s[start] == b"." and s[start + 1] == b".":
            dotdot = True
        elif i == start or (i - start == 1 and s[start] == b"."):
            dot = True
        elif i - start > _MAX_COMPONENT:
            component = True
        start = i + 1
    if dotdot:
        return _P_DOTDOT
    if dot:
        return _P_DOT
    if component:
        return _P_COMPONENT
    return _P_OK


cdef int _check_path(const char *p, size_t n) except -1:
    cdef uint32_t cp = 0
    cdef int code = _path_problem(<const unsigned char *>p, n, &cp)
    if code != _P_OK:
        path = PyUnicode_DecodeUTF8(p, n, "surrogateescape")
        raise ManifestError(f"entry path {path!r} {_PATH_PROBLEMS[code].format(cp)}")
    return 0


cdef inline int _ascii_ok(const char *s, size_t n) noexcept:
    cdef size_t i
    for i in range(n):
        if <unsigned char>s[i] >= 0x80:
            return 0
    return 1


cdef class ManifestWriter:
    """Streams sorted entries into the manifest format; ``close()`` returns the summary."""

    cdef object _out
    cdef ArtifactDigester _digester
    cdef Py_ssize_t _block_entries
    cdef Buf _buf          # current block payload
    cdef Buf _last         # last path written (UTF-8)
    cdef Buf _path         # add_page scratch: built path
    cdef Buf _ref          # add_page scratch: built ref
    cdef bint _have_last
    cdef Py_ssize_t _in_block
    cdef uint64_t _count
    cdef object _total_size
    cdef uint64_t _size_lo  # running total, folded into _total_size when it would wrap
    cdef bint _closed
    cdef bint _check_paths

    def __cinit__(self, out, digest_algorithm, Py_ssize_t block_entries=DEFAULT_BLOCK_ENTRIES,
                  bint check_paths=False):
        self._out = out
        self._check_paths = check_paths
        self._digester = ArtifactDigester(digest_algorithm)
        if block_entries > MAX_BLOCK_ENTRIES:
            raise ManifestError(f"block_entries is at most {MAX_BLOCK_ENTRIES}, what a reader accepts")
        self._block_entries = block_entries
        self._total_size = 0
        out.write(MAGIC + bytes([_CODE[digest_algorithm]]))

    def __dealloc__(self):
        free(self._buf.p)
        free(self._last.p)
        free(self._path.p)
        free(self._ref.p)

    cdef int _add(self, const char *p, size_t pl, int code, const char *dg, size_t dl,
                  uint64_t size, const char *r, size_t rl, const char *v, size_t vl,
                  const char *x, size_t xl) except -1:
        """Appends one checked entry (the caller has already called _check_order)."""
        cdef size_t shared = 0, limit
        _check_pair(p, pl, dg, dl)
        if self._in_block:
            limit = self._last.len if self._last.len < pl else pl
            while shared < limit and p[shared] == self._last.p[shared]:
                shared += 1
        cdef Buf *b = &self._buf
        buf_reserve(b, 70 + pl + dl + rl + vl + xl)
        buf_varint(b, shared)
        buf_bytes(b, p + shared, pl - shared)
        b.p[b.len] = <char>code
        b.len += 1
        buf_bytes(b, dg, dl)
        buf_varint(b, size)
        buf_bytes(b, r, rl)
        buf_bytes(b, v, vl)
        buf_bytes(b, x, xl)
        buf_set(&self._last, p, pl)
        self._have_last = True
        self._digester._pair(p, pl, dg, dl)
        self._count += 1
        if self._size_lo + size < self._size_lo:
            self._total_size += self._size_lo
            self._size_lo = 0
        self._size_lo += size
        self._in_block += 1
        if self._in_block >= self._block_entries or self._buf.len >= _BLOCK_PAYLOAD_BYTES:
            self._flush_block()
        return 0

    def add(self, str path, str algorithm, str digest, size, str ref="", str version_id="",
            str extra=""):
        cdef Py_ssize_t pl, dl, rl, vl, xl
        cdef uint64_t sz
        if self._closed:
            raise ManifestError("manifest writer is closed")
        code = _CODE.get(algorithm)
        if code is None:
            raise ManifestError(f"unknown entry digest algorithm {algorithm!r}")
        cdef const char *p
        try:
            p = PyUnicode_AsUTF8AndSize(path, &pl)
        except UnicodeEncodeError:
            if self._check_paths:
                raise ManifestError(f"entry path {path!r} {_PATH_PROBLEMS[_P_UTF8]}") from None
            raise
        if self._check_paths:
            _check_path(p, pl)
        # The order check sits between encoding the path and checking the size,
        # as in the twin, so both report the same error first.
        if self._have_last:
            self._check_order(p, pl)
        try:
            sz = size
        except OverflowError:
            raise ManifestError(f"size {size} out of range for {path!r}") from None
        if not PyUnicode_IS_ASCII(digest):
            raise ManifestError(f"non-ASCII digest for {path!r}")
        cdef const char *d = PyUnicode_AsUTF8AndSize(digest, &dl)
        cdef const char *r = PyUnicode_AsUTF8AndSize(ref, &rl)
        cdef const char *v = PyUnicode_AsUTF8AndSize(version_id, &vl)
        cdef const char *x = PyUnicode_AsUTF8AndSize(extra, &xl)
        self._add(p, pl, <int>code, d, dl, sz, r, rl, v, vl, x, xl)

    cdef int _check_order(self, const char *p, size_t pl) except -1:
        cdef size_t ll = self._last.len
        cdef size_t limit = ll if ll < pl else pl
        cdef int c = memcmp(p, self._last.p, limit)
        if c < 0 or (c == 0 and pl <= ll):
            path = PyUnicode_DecodeUTF8(p, pl, NULL)
            if c == 0 and pl == ll:
                raise ManifestError(f"duplicate manifest path {path!r}")
            last = PyUnicode_DecodeUTF8(self._last.p, ll, NULL)
            raise ManifestError(f"manifest paths out of order: {path!r} after {last!r}")
        return 0

    def add_many(self, entries):
        for e in entries:
            self.add(*e)

    def add_page(self, page, Py_ssize_t strip, str path_prefix, str ref_prefix,
                 bint bucket_versioned=False, str algorithm="etag"):
        """Appends every kept object of a listing page as an ``algorithm`` entry
        (``etag`` for S3 pages; GCS pages carry an ``md5`` digest).

        The entry path is ``path_prefix + key[strip:]`` (``strip`` counts
        characters) and its ref ``ref_prefix + key``. Outside a versioned
        bucket S3 reports the placeholder version id ``"null"``; it is not a
        version anyone can fetch, so it is recorded as "".
        """
        if algorithm not in _CODE:
            raise ManifestError(f"unknown entry digest algorithm {algorithm!r}")
        cdef int code = _CODE[algorithm]
        raw = getattr(page, "_raw", None)
        if raw is None:
            self._add_page_generic(page, strip, path_prefix, ref_prefix, bucket_versioned, algorithm)
            return
        strings, index, count = raw()
        cdef bytes sb = strings, ib = index
        cdef const char *s = PyBytes_AS_STRING(sb)
        cdef const int64_t *ix = <const int64_t *>PyBytes_AS_STRING(ib)
        cdef Py_ssize_t n = count, i
        cdef Py_ssize_t ppl, rpl
        cdef const char *pp = PyUnicode_AsUTF8AndSize(path_prefix, &ppl)
        cdef const char *rp = PyUnicode_AsUTF8AndSize(ref_prefix, &rpl)
        cdef const int64_t *row
        cdef const char *key
        cdef const char *vid
        cdef size_t kl, skip, vl
        cdef Py_ssize_t chars
        if PyBytes_GET_SIZE(ib) < n * 9 * <Py_ssize_t>sizeof(int64_t):
            raise ValueError("corrupt ListPage index")
        if strip < 0:
            # Negative slices count from the end; rare enough to take the slow path.
            self._add_page_generic(page, strip, path_prefix, ref_prefix, bucket_versioned, algorithm)
            return
        for i in range(n):
            if self._closed:
                raise ManifestError("manifest writer is closed")
            row = ix + 9 * i
            key = s + row[0]
            kl = <size_t>row[1]
            # Skip `strip` characters: count UTF-8 lead bytes.
            skip = 0
            chars = 0
            while skip < kl and chars < strip:
                skip += 1
                while skip < kl and (<unsigned char>key[skip] & 0xC0) == 0x80:
                    skip += 1
                chars += 1
            self._path.len = 0
            buf_reserve(&self._path, ppl + kl - skip)
            memcpy(self._path.p, pp, ppl)
            memcpy(self._path.p + ppl, key + skip, kl - skip)
            self._path.len = ppl + kl - skip
            self._ref.len = 0
            buf_reserve(&self._ref, rpl + kl)
            memcpy(self._ref.p, rp, rpl)
            memcpy(self._ref.p + rpl, key, kl)
            self._ref.len = rpl + kl
            vid = s + row[4]
            vl = <size_t>row[5]
            if not bucket_versioned and vl == 4 and memcmp(vid, b"null", 4) == 0:
                vl = 0
            if self._check_paths:
                _check_path(self._path.p, self._path.len)
            if self._have_last:
                self._check_order(self._path.p, self._path.len)
            if not _ascii_ok(s + row[2], <size_t>row[3]):
                path = PyUnicode_DecodeUTF8(self._path.p, self._path.len, NULL)
                raise ManifestError(f"non-ASCII digest for {path!r}")
            self._add(self._path.p, self._path.len, code, s + row[2], <size_t>row[3],
                      <uint64_t>row[8], self._ref.p, self._ref.len, vid, vl, b"", 0)

    def _add_page_generic(self, page, strip, path_prefix, ref_prefix, bucket_versioned, algorithm):
        for i in range(page.count):
            key = page.key(i)
            vid = page.version_id(i)
            if not bucket_versioned and vid == "null":
                vid = ""
            self.add(path_prefix + key[strip:], algorithm, page.etag(i), page.size(i),
                     ref_prefix + key, vid)

    cdef int _flush_block(self) except -1:
        cdef char hdr[8]
        cdef uint32_t plen, cnt
        cdef int k
        if not self._in_block:
            return 0
        payload = _compress(PyBytes_FromStringAndSize(self._buf.p, self._buf.len), 1)
        plen = <uint32_t>len(payload)
        cnt = <uint32_t>self._in_block
        for k in range(4):
            hdr[k] = <char>((plen >> (8 * k)) & 0xFF)
            hdr[4 + k] = <char>((cnt >> (8 * k)) & 0xFF)
        self._out.write(PyBytes_FromStringAndSize(hdr, 8))
        self._out.write(payload)
        self._buf.len = 0
        self._in_block = 0
        return 0

    cdef object _total(self):
        return self._total_size + self._size_lo

    @property
    def count(self):
        """Entries written so far (a listing's progress, read between pages)."""
        return self._count

    @property
    def total_size(self):
        """The sum of the sizes written so far."""
        return self._total()

    def close(self):
        cdef Buf tail
        if not self._closed:
            self._flush_block()
            tail.p = NULL
            tail.len = tail.cap = 0
            try:
                hx = self._digester.hexdigest().encode("ascii")
                total = self._total()
                buf_reserve(&tail, 4 + 30 + len(hx))
                memcpy(tail.p, b"\0\0\0\0", 4)
                tail.len = 4
                buf_varint(&tail, self._count)
                # The twin writes any total as a varint; above 2**64 needs Python ints.
                if total <= _U64_MAX:
                    buf_varint(&tail, <uint64_t>total)
                    buf_bytes(&tail, hx, len(hx))
                    self._out.write(PyBytes_FromStringAndSize(tail.p, tail.len))
                else:
                    rest = bytearray()
                    n = total
                    while n >= 0x80:
                        rest.append((n & 0x7F) | 0x80)
                        n >>= 7
                    rest.append(n)
                    rest.append(len(hx))
                    rest += hx
                    self._out.write(PyBytes_FromStringAndSize(tail.p, tail.len) + bytes(rest))
            finally:
                free(tail.p)
            self._closed = True
        return ManifestSummary(
            self._count, self._total(), self._digester.hexdigest(), self._digester.algorithm
        )


# ---------------------------------------------------------------- reader

cdef class _Cur:
    cdef const unsigned char *p
    cdef size_t pos
    cdef size_t n

    cdef inline uint64_t varint(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v = 0, b
        cdef int shift = 0
        while True:
            if self.pos >= self.n:
                raise ManifestError("truncated manifest: varint runs past the end")
            b = self.p[self.pos]
            self.pos += 1
            if shift == 63 and (b & 0x7F) > 1:
                raise ManifestError("malformed manifest: varint too long")
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7
            if shift > 63:
                raise ManifestError("malformed manifest: varint too long")

    cdef inline const char *take(self, uint64_t k) except NULL:
        cdef const char *r
        if k > self.n - self.pos:
            raise ManifestError("truncated manifest: field runs past the end")
        r = <const char *>self.p + self.pos
        self.pos += k
        return r


def _read_exact(inp, Py_ssize_t n):
    b = inp.read(n)
    if len(b) != n:
        raise ManifestError("truncated manifest")
    return b


cdef inline uint32_t _u32(bytes b) noexcept:
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(b)
    return p[0] | (p[1] << 8) | (p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline str _utf8(const char *p, uint64_t n):
    if n == 0:
        return ""
    return PyUnicode_DecodeUTF8(p, n, NULL)


from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_SET_ITEM

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject *t, Py_ssize_t n)
    void PyObject_GC_UnTrack(void *op)

# Decoded entries are left untracked by the cyclic GC. Each holds only
# strings, an int and the maker's shared values (a source that never refers
# back to its entries), so it cannot close a cycle as decoded; tracked, the
# 4096 entries of a block outlive several young collections and are walked
# again by each older one, which cost a third of a 10M-entry read's CPU
# (perf: gc_collect_main, visit_decref, visit_reachable). A caller that later
# stores a container in an entry that leads back to it makes a cycle that is
# never collected (a leak, as for any untracked object), not a fault.

cdef PyTypeObject *_ENTRY_TYPE = <PyTypeObject *>ManifestEntry


cdef inline object _entry(object path, object alg, object digest, object size,
                          object ref, object vid, object extra):
    # A ManifestEntry made as tuple.__new__ makes a tuple subclass, minus the
    # temporary tuple and the call: a third of the decode time per entry.
    cdef object t = PyType_GenericAlloc(_ENTRY_TYPE, 7)
    # PyTuple_SET_ITEM steals a reference: each item gets one first.
    Py_INCREF(path)
    PyTuple_SET_ITEM(t, 0, path)
    Py_INCREF(alg)
    PyTuple_SET_ITEM(t, 1, alg)
    Py_INCREF(digest)
    PyTuple_SET_ITEM(t, 2, digest)
    Py_INCREF(size)
    PyTuple_SET_ITEM(t, 3, size)
    Py_INCREF(ref)
    PyTuple_SET_ITEM(t, 4, ref)
    Py_INCREF(vid)
    PyTuple_SET_ITEM(t, 5, vid)
    Py_INCREF(extra)
    PyTuple_SET_ITEM(t, 6, extra)
    PyObject_GC_UnTrack(<PyObject *>t)
    return t


cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    enum:
        T_OBJECT_EX

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member

from depot.native._manifest_py import ENTRY_FIELDS, _slot


cdef class EntryMaker:
    """See the twin. Checked as the twin checks; then each entry is one
    allocation and a pointer store per field, with no ``__init__`` and no
    attribute lookup, which is what makes a decoded entry as cheap as a tuple."""

    cdef object cls
    cdef PyTypeObject *tp
    cdef tuple values
    cdef Py_ssize_t off[7]
    cdef Py_ssize_t *fixed_off
    cdef Py_ssize_t nfixed

    def __cinit__(self, cls, **fixed):
        if not isinstance(cls, type) or cls.__new__ is not object.__new__:
            raise TypeError("EntryMaker needs a class whose __new__ is object.__new__")
        cdef Py_ssize_t i = 0
        for name in ENTRY_FIELDS:
            self.off[i] = _offset(cls, name)
            i += 1
        self.fixed_off = <Py_ssize_t *>malloc(max(len(fixed), 1) * sizeof(Py_ssize_t))
        if self.fixed_off == NULL:
            raise MemoryError()
        i = 0
        for name in fixed:
            self.fixed_off[i] = _offset(cls, name)
            i += 1
        self.nfixed = i
        self.values = tuple(fixed.values())
        self.cls = cls
        self.tp = <PyTypeObject *>cls

    def __dealloc__(self):
        free(self.fixed_off)

    def __call__(self, path, algorithm, digest, size, ref="", version_id="", extra=""):
        return _made(self, path, algorithm, digest, size, ref, version_id, extra)


cdef Py_ssize_t _offset(object cls, str name) except -1:
    d = _slot(cls, name)
    cdef PyMemberDef *m = (<PyMemberDescrObject *><PyObject *>d).d_member
    # What a __slots__ entry always is; anything else is not written blindly.
    if m.type != T_OBJECT_EX or m.flags != 0 or m.offset <= 0:
        raise TypeError(f"EntryMaker: {cls.__qualname__}.{name} is not a plain slot")
    return m.offset


cdef inline void _store(object o, Py_ssize_t off, object v) noexcept:
    # A fresh instance's slots are NULL (the allocation zeroes them): nothing to release.
    Py_INCREF(v)
    (<PyObject **>(<char *><PyObject *>o + off))[0] = <PyObject *>v


cdef inline object _made(EntryMaker m, object path, object alg, object digest, object size,
                         object ref, object vid, object extra):
    cdef object o = PyType_GenericAlloc(m.tp, 0)
    cdef Py_ssize_t i
    _store(o, m.off[0], path)
    _store(o, m.off[1], alg)
    _store(o, m.off[2], digest)
    _store(o, m.off[3], size)
    _store(o, m.off[4], ref)
    _store(o, m.off[5], vid)
    _store(o, m.off[6], extra)
    for i in range(m.nfixed):
        _store(o, m.fixed_off[i], <object>PyTuple_GET_ITEM(m.values, i))
    PyObject_GC_UnTrack(<PyObject *>o)
    return o


cdef list _decode_block(bytes payload, uint32_t expected, uint64_t *sums, EntryMaker make=None):
    cdef _Cur cur = _Cur.__new__(_Cur)
    cdef Buf prev
    cdef uint64_t shared, k, size, dl
    cdef const char *q
    cdef unsigned char code
    cdef list out = []
    cdef tuple algs = ALGORITHMS
    cdef Py_ssize_t nalg = len(ALGORITHMS)
    cur.p = <const unsigned char *>PyBytes_AS_STRING(payload)
    cur.n = PyBytes_GET_SIZE(payload)
    cur.pos = 0
    # As the twin's _check_block_count: a small block cannot claim many entries.
    if expected > MAX_BLOCK_ENTRIES or expected * MIN_ENTRY_BYTES > cur.n:
        raise ManifestError(f"malformed manifest: a block of {cur.n} bytes cannot hold {expected} entries")
    prev.p = NULL
    prev.len = prev.cap = 0
    try:
        for _ in range(expected):
            shared = cur.varint()
            if shared > prev.len:
                raise ManifestError("malformed manifest: bad path prefix")
            k = cur.varint()
            if k > _MAX_PATH - shared:  # shared <= prev.len <= _MAX_PATH: no wrap
                raise ManifestError(f"malformed manifest: entry path longer than {MAX_PATH} bytes")
            q = cur.take(k)
            prev.len = shared
            buf_reserve(&prev, k)
            memcpy(prev.p + shared, q, k)
            prev.len = shared + k
            code = (<const unsigned char *>cur.take(1))[0]
            if code >= nalg:
                raise ManifestError("malformed manifest: unknown entry algorithm code")
            dl = cur.varint()
            digest = PyUnicode_DecodeASCII(cur.take(dl), dl, NULL) if dl else ""
            size = cur.varint()
            k = cur.varint()
            ref = _utf8(cur.take(k), k)
            k = cur.varint()
            vid = _utf8(cur.take(k), k)
            k = cur.varint()
            extra = _utf8(cur.take(k), k)
            if make is None:
                out.append(_entry(_utf8(prev.p, prev.len), algs[code], digest, size, ref, vid, extra))
            else:
                out.append(_made(make, _utf8(prev.p, prev.len), algs[code], digest, size, ref, vid, extra))
            if sums[0] + size < sums[0]:
                sums[1] += 1
            sums[0] += size
        if cur.pos != cur.n:
            raise ManifestError("malformed manifest: trailing bytes in block")
    finally:
        free(prev.p)
    return out


class ManifestReader:
    """Reads a manifest block by block; ``summary`` is set once the footer is read."""

    def __init__(self, inp):
        self._in = inp
        head = _read_exact(inp, len(MAGIC) + 1)
        if head[: len(MAGIC)] != MAGIC:
            raise ManifestError("not a Depot manifest (bad magic)")
        if head[len(MAGIC)] >= len(ALGORITHMS):
            raise ManifestError("malformed manifest: unknown digest algorithm code")
        self.digest_algorithm = ALGORITHMS[head[len(MAGIC)]]
        self.summary = None

    def batches(self):
        """Yields the entries one block at a time, in path order."""
        cdef uint64_t sums[2]
        cdef uint32_t n, expected
        count = 0
        size_sum = 0
        inp = self._in
        while True:
            n = _u32(_read_exact(inp, 4))
            if n == 0:
                break
            expected = _u32(_read_exact(inp, 4))
            payload = _inflate(_read_exact(inp, n))
            sums[0] = sums[1] = 0
            try:
                out = _decode_block(payload, expected, sums)
            except UnicodeDecodeError:
                raise ManifestError("malformed manifest: text field is not valid UTF-8") from None
            count += expected
            size_sum += (<object>sums[1] << 64) + sums[0]
            yield out
        rest = inp.read()
        cdef _Cur cur = _Cur.__new__(_Cur)
        cdef bytes rb = bytes(rest)
        cur.p = <const unsigned char *>PyBytes_AS_STRING(rb)
        cur.n = PyBytes_GET_SIZE(rb)
        cur.pos = 0
        total = cur.varint()
        # The total size may pass 2**64 (it is a sum): decode it with Python ints.
        size = 0
        shift = 0
        while True:
            if cur.pos >= cur.n:
                raise ManifestError("truncated manifest: varint runs past the end")
            byte = cur.p[cur.pos]
            cur.pos += 1
            size |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        cdef uint64_t dlen = cur.varint()
        cdef const char *dq = cur.take(dlen)
        try:
            digest = PyUnicode_DecodeASCII(dq, dlen, NULL) if dlen else ""
        except UnicodeDecodeError:
            raise ManifestError("malformed manifest: non-ASCII artifact digest") from None
        if cur.pos != cur.n:
            raise ManifestError("malformed manifest: trailing bytes after footer")
        if total != count:
            raise ManifestError(f"malformed manifest: footer says {total} entries, read {count}")
        if size != size_sum:
            raise ManifestError(
                f"malformed manifest: footer says {size} bytes, entries sum to {size_sum}"
            )
        self.summary = ManifestSummary(total, size, digest, self.digest_algorithm)

    def __iter__(self):
        for batch in self.batches():
            yield from batch


# ---------------------------------------------------------------- block index
# scan_blocks and read_block are I/O (a header read and a short inflate per
# block of 4096 entries): the twin's are used as they are. decode_payload
# runs per block on the client, for every entry of a read: compiled.

from depot.native._manifest_py import MAX_BLOCK_PAYLOAD, Block, read_block, scan_blocks

cdef object _decompressobj = zlib.decompressobj
cdef object _zlib_error = zlib.error


def _inflate(data):
    """See the twin."""
    d = _decompressobj()
    try:
        payload = d.decompress(data, MAX_BLOCK_PAYLOAD)
    except _zlib_error as e:
        raise ManifestError(f"corrupt manifest block: {e}") from None
    if d.unconsumed_tail:
        raise ManifestError(f"malformed manifest block: inflates past {MAX_BLOCK_PAYLOAD} bytes")
    if not d.eof or d.unused_data:
        raise ManifestError("corrupt manifest block: the zlib stream is incomplete or followed by junk")
    return payload


def inflate_block(bytes raw):
    """See the twin."""
    cdef const unsigned char *p
    cdef uint32_t n, count
    if PyBytes_GET_SIZE(raw) < 8:
        raise ManifestError("truncated manifest block: no header")
    p = <const unsigned char *>PyBytes_AS_STRING(raw)
    n = p[0] | (p[1] << 8) | (p[2] << 16) | (<uint32_t>p[3] << 24)
    count = p[4] | (p[5] << 8) | (p[6] << 16) | (<uint32_t>p[7] << 24)
    if n != PyBytes_GET_SIZE(raw) - 8:
        raise ManifestError(
            f"malformed manifest block: header says {n} payload bytes, got {PyBytes_GET_SIZE(raw) - 8}"
        )
    return _inflate(memoryview(raw)[8:]), count


def decode_payload(bytes payload, count, EntryMaker make=None):
    """The entries of a payload from ``inflate_block``; see the twin for the checks."""
    cdef uint64_t sums[2]
    sums[0] = sums[1] = 0
    if not 0 <= count <= MAX_BLOCK_ENTRIES:
        # The twin's message; any count past the cap fails here, before a C conversion could.
        raise ManifestError(
            f"malformed manifest: a block of {len(payload)} bytes cannot hold {count} entries"
        )
    try:
        return _decode_block(payload, count, sums, make)
    except UnicodeDecodeError:
        raise ManifestError("malformed manifest: text field is not valid UTF-8") from None


def decode_block(bytes raw, EntryMaker make=None):
    """The entries of one stored block; see the twin for the checks."""
    payload, count = inflate_block(raw)
    return decode_payload(payload, count, make)
