# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled GCS listing-page parser; the twin is ``_gcspage_py.py`` (same API, grammar and messages).

One pass over the JSON body validates it (RFC 8259, strict UTF-8, depth
64) and records, per object of the top-level ``items`` array, the spans of
``name``, ``size``, ``md5Hash``, ``generation`` and ``crc32c``; the kept
strings are decoded into one buffer and an int64 index in the S3 page's row
layout, so no Python object exists per key until someone asks for one.
Errors are decided in the twin's order: invalid JSON first, then an error
document, then ``nextPageToken``, ``items``, and the first bad item.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset

from depot.native._gcspage_py import GCSPageError

__all__ = ["GCSListPage", "GCSPageError", "parse_gcs_page"]

cdef enum:
    NI = 9
    MAX_DEPTH = 64
    NOGIL_MIN = 32 * 1024
    # value kinds
    K_ABSENT = 0
    K_NULL = 1
    K_STR = 2
    K_NUM = 3
    K_OTHER = 4
    # kept item fields
    F_NAME = 0
    F_SIZE = 1
    F_MD5 = 2
    F_GEN = 3
    F_CRC = 4
    NF = 5
    # outcomes
    OK = 0
    E_JSON = 1
    E_NOMEM = 2
    # item errors, in the twin's order of checks
    IE_NOT_OBJECT = 1
    IE_NO_NAME = 2
    IE_NAME_UNICODE = 3
    IE_SIZE = 4
    IE_GEN = 5
    IE_MD5_TYPE = 6
    IE_CRC_TYPE = 7
    IE_MD5_FORMAT = 8
    IE_CRC_UNICODE = 9


cdef struct Val:
    int kind
    size_t off     # strings: just past the opening quote; numbers: the token
    size_t len
    bint esc       # a string holding escapes


cdef struct Buf:
    char *p
    size_t len
    size_t cap


cdef struct State:
    const unsigned char *d
    size_t n
    size_t i
    int depth
    int rc
    # top level (last member wins)
    bint has_error
    Val err_code
    Val err_msg
    Val token
    Val items
    # the current items array
    Buf out
    Buf idx
    size_t count
    Py_ssize_t first_without_md5
    Py_ssize_t bad_item
    int bad_kind
    Val bad_name
    size_t last_key_off
    size_t last_key_len


cdef int buf_reserve(Buf *b, size_t extra) noexcept nogil:
    cdef size_t cap
    cdef char *p
    if b.len + extra <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 4096
    while cap < b.len + extra:
        cap *= 2
    p = <char *>realloc(b.p, cap)
    if p == NULL:
        return -1
    b.p = p
    b.cap = cap
    return 0


cdef inline void skip_ws(State *S) noexcept nogil:
    cdef unsigned char c
    while S.i < S.n:
        c = S.d[S.i]
        if c == 32 or c == 9 or c == 10 or c == 13:
            S.i += 1
        else:
            return


cdef inline int hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef int utf8_len(const unsigned char *s, size_t n) noexcept nogil:
    """Length of the valid UTF-8 sequence at s (strict: no overlong, surrogate, > U+10FFFF), or -1."""
    cdef unsigned char c = s[0]
    if c < 0x80:
        return 1
    if 0xC2 <= c <= 0xDF:
        if n >= 2 and (s[1] & 0xC0) == 0x80:
            return 2
        return -1
    if 0xE0 <= c <= 0xEF:
        if n < 3 or (s[1] & 0xC0) != 0x80 or (s[2] & 0xC0) != 0x80:
            return -1
        if c == 0xE0 and s[1] < 0xA0:
            return -1
        if c == 0xED and s[1] >= 0xA0:
            return -1
        return 3
    if 0xF0 <= c <= 0xF4:
        if n < 4 or (s[1] & 0xC0) != 0x80 or (s[2] & 0xC0) != 0x80 or (s[3] & 0xC0) != 0x80:
            return -1
        if c == 0xF0 and s[1] < 0x90:
            return -1
        if c == 0xF4 and s[1] >= 0x90:
            return -1
        return 4
    return -1


cdef int scan_string(State *S, Val *v) noexcept nogil:
    """At the opening quote: validates the string and records its span."""
    cdef unsigned char c
    cdef int k, j
    S.i += 1
    v.kind = K_STR
    v.off = S.i
    v.esc = False
    while S.i < S.n:
        c = S.d[S.i]
        if c == 34:  # "
            v.len = S.i - v.off
            S.i += 1
            return OK
        if c == 92:  # backslash
            v.esc = True
            if S.i + 1 >= S.n:
                return E_JSON
            c = S.d[S.i + 1]
            if c == 117:  # u
                if S.i + 6 > S.n:
                    return E_JSON
                for j in range(2, 6):
                    if hexval(S.d[S.i + j]) < 0:
                        return E_JSON
                S.i += 6
            elif c in (34, 92, 47, 98, 102, 110, 114, 116):
                S.i += 2
            else:
                return E_JSON
        elif c < 32:
            return E_JSON
        elif c < 0x80:
            S.i += 1
        else:
            k = utf8_len(S.d + S.i, S.n - S.i)
            if k < 0:
                return E_JSON
            S.i += k
    return E_JSON


cdef int scan_number(State *S, Val *v) noexcept nogil:
    cdef size_t st = S.i
    if S.i < S.n and S.d[S.i] == 45:  # -
        S.i += 1
    if S.i >= S.n:
        return E_JSON
    if S.d[S.i] == 48:
        S.i += 1
    elif 49 <= S.d[S.i] <= 57:
        while S.i < S.n and 48 <= S.d[S.i] <= 57:
            S.i += 1
    else:
        return E_JSON
    if S.i < S.n and S.d[S.i] == 46:  # .
        S.i += 1
        if S.i >= S.n or not (48 <= S.d[S.i] <= 57):
            return E_JSON
        while S.i < S.n and 48 <= S.d[S.i] <= 57:
            S.i += 1
    if S.i < S.n and (S.d[S.i] == 101 or S.d[S.i] == 69):  # e E
        S.i += 1
        if S.i < S.n and (S.d[S.i] == 43 or S.d[S.i] == 45):
            S.i += 1
        if S.i >= S.n or not (48 <= S.d[S.i] <= 57):
            return E_JSON
        while S.i < S.n and 48 <= S.d[S.i] <= 57:
            S.i += 1
    v.kind = K_NUM
    v.off = st
    v.len = S.i - st
    v.esc = False
    return OK


cdef int scan_literal(State *S, const char *word, size_t n) noexcept nogil:
    cdef size_t j
    if S.i + n > S.n:
        return E_JSON
    for j in range(n):
        if S.d[S.i + j] != <unsigned char>word[j]:
            return E_JSON
    S.i += n
    return OK


cdef int key_is(State *S, Val *k, const char *word, size_t n) noexcept nogil:
    """Whether the member name (no escapes) is ``word``; names with escapes are decoded by hand."""
    cdef size_t j
    if not k.esc:
        if k.len != n:
            return 0
        for j in range(n):
            if S.d[k.off + j] != <unsigned char>word[j]:
                return 0
        return 1
    # A name spelled with escapes ("\u006eame"): decode and compare (rare).
    cdef char tmp[32]
    cdef Py_ssize_t m = decode_into(S, k, tmp, 32)
    if m < 0 or <size_t>m != n:
        return 0
    for j in range(n):
        if tmp[j] != word[j]:
            return 0
    return 1


cdef Py_ssize_t decode_into(State *S, Val *v, char *dst, size_t cap) noexcept nogil:
    """Decodes a string value into dst (UTF-8); -1 if it does not fit, -2 on a lone surrogate."""
    cdef size_t i = v.off, end = v.off + v.len, o = 0
    cdef unsigned char c
    cdef uint32_t cp, lo
    while i < end:
        c = S.d[i]
        if c != 92:
            if o >= cap:
                return -1
            dst[o] = <char>c
            o += 1
            i += 1
            continue
        c = S.d[i + 1]
        if c != 117:
            if o >= cap:
                return -1
            if c == 98:
                dst[o] = 8
            elif c == 102:
                dst[o] = 12
            elif c == 110:
                dst[o] = 10
            elif c == 114:
                dst[o] = 13
            elif c == 116:
                dst[o] = 9
            else:
                dst[o] = <char>c
            o += 1
            i += 2
            continue
        cp = (hexval(S.d[i + 2]) << 12) | (hexval(S.d[i + 3]) << 8) | (hexval(S.d[i + 4]) << 4) | hexval(S.d[i + 5])
        i += 6
        if 0xD800 <= cp <= 0xDBFF:
            if i + 6 <= end and S.d[i] == 92 and S.d[i + 1] == 117:
                lo = (hexval(S.d[i + 2]) << 12) | (hexval(S.d[i + 3]) << 8) | (hexval(S.d[i + 4]) << 4) | hexval(S.d[i + 5])
                if 0xDC00 <= lo <= 0xDFFF:
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
                else:
                    return -2
            else:
                return -2
        elif 0xDC00 <= cp <= 0xDFFF:
            return -2
        if o + 4 > cap:
            return -1
        if cp < 0x80:
            dst[o] = <char>cp
            o += 1
        elif cp < 0x800:
            dst[o] = <char>(0xC0 | (cp >> 6))
            dst[o + 1] = <char>(0x80 | (cp & 0x3F))
            o += 2
        elif cp < 0x10000:
            dst[o] = <char>(0xE0 | (cp >> 12))
            dst[o + 1] = <char>(0x80 | ((cp >> 6) & 0x3F))
            dst[o + 2] = <char>(0x80 | (cp & 0x3F))
            o += 3
        else:
            dst[o] = <char>(0xF0 | (cp >> 18))
            dst[o + 1] = <char>(0x80 | ((cp >> 12) & 0x3F))
            dst[o + 2] = <char>(0x80 | ((cp >> 6) & 0x3F))
            dst[o + 3] = <char>(0x80 | (cp & 0x3F))
            o += 4
    return <Py_ssize_t>o


cdef int append_str(State *S, Val *v, int64_t *row) noexcept nogil:
    """Appends a kept string (decoded) to the strings buffer; row gets (offset, length). -2: lone surrogate."""
    cdef Py_ssize_t m
    if v.kind != K_STR:
        row[0] = <int64_t>S.out.len
        row[1] = 0
        return OK
    if buf_reserve(&S.out, v.len) < 0:
        return E_NOMEM
    row[0] = <int64_t>S.out.len
    if not v.esc:
        memcpy(S.out.p + S.out.len, S.d + v.off, v.len)
        m = <Py_ssize_t>v.len
    else:
        m = decode_into(S, v, S.out.p + S.out.len, v.len)  # decoded is never longer than escaped
        if m < 0:
            return -2
    S.out.len += <size_t>m
    row[1] = m
    return OK


cdef bint digits_only(const char *s, size_t n) noexcept nogil:
    cdef size_t j
    if n == 0:
        return False
    for j in range(n):
        if not (48 <= <unsigned char>s[j] <= 57):
            return False
    return True


cdef bint md5_b64(const char *s, size_t n) noexcept nogil:
    cdef size_t j
    cdef unsigned char c
    if n != 24 or s[22] != 61 or s[23] != 61:
        return False
    for j in range(22):
        c = <unsigned char>s[j]
        if not ((65 <= c <= 90) or (97 <= c <= 122) or (48 <= c <= 57) or c == 43 or c == 47):
            return False
    return True


cdef void item_error(State *S, int kind, Val *name) noexcept nogil:
    if S.bad_item < 0:
        S.bad_item = <Py_ssize_t>S.count
        S.bad_kind = kind
        if name != NULL:
            S.bad_name = name[0]


cdef int finish_item(State *S, Val *f) noexcept nogil:
    """Checks one item's kept fields in the twin's order and appends its row."""
    cdef int64_t row[NI]
    cdef size_t start = S.out.len, m
    cdef const char *p
    cdef uint64_t size = 0
    cdef int rc, j
    cdef size_t zeros
    if S.bad_item >= 0:
        S.count += 1  # only the first bad item is reported
        return OK
    if f[F_NAME].kind != K_STR or f[F_NAME].len == 0:
        item_error(S, IE_NO_NAME, NULL)
        S.count += 1
        return OK
    if buf_reserve(&S.idx, NI * sizeof(int64_t)) < 0:
        return E_NOMEM
    memset(row, 0, sizeof(row))
    rc = append_str(S, &f[F_NAME], &row[0])
    if rc == E_NOMEM:
        return rc
    if rc == -2 or row[1] == 0:
        S.out.len = start
        item_error(S, IE_NAME_UNICODE if rc == -2 else IE_NO_NAME, &f[F_NAME])
        S.count += 1
        return OK
    # size: a digit string (decoded) or a number token of digits only
    cdef size_t mark = S.out.len
    cdef int64_t tmp[2]
    if f[F_SIZE].kind == K_NUM:
        p = <const char *>S.d + f[F_SIZE].off
        m = f[F_SIZE].len
    elif f[F_SIZE].kind == K_STR:
        rc = append_str(S, &f[F_SIZE], tmp)
        if rc == E_NOMEM:
            return rc
        p = S.out.p + tmp[0] if rc == OK else NULL
        m = <size_t>tmp[1] if rc == OK else 0
    else:
        p = NULL
        m = 0
    if p == NULL or not digits_only(p, m):
        S.out.len = start
        item_error(S, IE_SIZE, &f[F_NAME])
        S.count += 1
        return OK
    zeros = 0
    while zeros < m and p[zeros] == 48:
        zeros += 1
    if m - zeros > 19:
        S.out.len = start
        item_error(S, IE_SIZE, &f[F_NAME])
        S.count += 1
        return OK
    for j in range(<int>zeros, <int>m):
        size = size * 10 + <uint64_t>(p[j] - 48)
    if size >= (<uint64_t>1 << 63):
        S.out.len = start
        item_error(S, IE_SIZE, &f[F_NAME])
        S.count += 1
        return OK
    S.out.len = mark  # the size's decoded text is not kept
    # generation (the version column), then md5Hash (the digest column) and crc32c
    if f[F_GEN].kind == K_NUM:
        if buf_reserve(&S.out, f[F_GEN].len) < 0:
            return E_NOMEM
        memcpy(S.out.p + S.out.len, S.d + f[F_GEN].off, f[F_GEN].len)
        row[4] = <int64_t>S.out.len
        row[5] = <int64_t>f[F_GEN].len
        S.out.len += f[F_GEN].len
    elif f[F_GEN].kind == K_STR:
        rc = append_str(S, &f[F_GEN], &row[4])
        if rc == E_NOMEM:
            return rc
        if rc != OK:
            row[5] = 0
            row[4] = -1  # marks "bad"
    elif f[F_GEN].kind == K_OTHER:
        row[4] = -1
    else:
        row[4] = <int64_t>S.out.len
        row[5] = 0
    if f[F_GEN].kind != K_ABSENT and f[F_GEN].kind != K_NULL and (
        row[4] < 0 or not digits_only(S.out.p + row[4], <size_t>row[5])
    ):
        S.out.len = start
        item_error(S, IE_GEN, &f[F_NAME])
        S.count += 1
        return OK
    if f[F_MD5].kind == K_NUM or f[F_MD5].kind == K_OTHER:
        S.out.len = start
        item_error(S, IE_MD5_TYPE, &f[F_NAME])
        S.count += 1
        return OK
    if f[F_CRC].kind == K_NUM or f[F_CRC].kind == K_OTHER:
        S.out.len = start
        item_error(S, IE_CRC_TYPE, &f[F_NAME])
        S.count += 1
        return OK
    rc = append_str(S, &f[F_MD5], &row[2])
    if rc == E_NOMEM:
        return rc
    if rc != OK or (row[3] > 0 and not md5_b64(S.out.p + row[2], <size_t>row[3])):
        S.out.len = start
        item_error(S, IE_MD5_FORMAT, &f[F_NAME])
        S.count += 1
        return OK
    rc = append_str(S, &f[F_CRC], &row[6])
    if rc == E_NOMEM:
        return rc
    if rc != OK:
        S.out.len = start
        item_error(S, IE_CRC_UNICODE, &f[F_NAME])
        S.count += 1
        return OK
    row[8] = <int64_t>size
    if row[3] == 0 and S.first_without_md5 < 0:
        S.first_without_md5 = <Py_ssize_t>S.count
    memcpy(S.idx.p + S.idx.len, row, sizeof(row))
    S.idx.len += sizeof(row)
    S.last_key_off = <size_t>row[0]
    S.last_key_len = <size_t>row[1]
    S.count += 1
    return OK


cdef int scan_container(State *S, Val *v, int role) noexcept nogil:
    """An object or array at S.i; role says what its members mean (see scan_value)."""
    cdef unsigned char open_c = S.d[S.i]
    cdef Val k, member
    cdef Val fields[NF]
    cdef int rc, sub
    cdef bint first = True
    S.depth += 1
    if S.depth > MAX_DEPTH:
        return E_JSON
    S.i += 1
    v.kind = K_OTHER
    if role == 3:
        memset(fields, 0, sizeof(fields))
    if open_c == 91:  # [
        while True:
            skip_ws(S)
            if S.i >= S.n:
                return E_JSON
            if S.d[S.i] == 93 and first:
                S.i += 1
                break
            if not first:
                if S.d[S.i] == 93:
                    S.i += 1
                    break
                if S.d[S.i] != 44:
                    return E_JSON
                S.i += 1
                skip_ws(S)
            first = False
            if role == 2:
                if S.i < S.n and S.d[S.i] == 123:
                    rc = scan_value(S, &member, 3)
                else:
                    rc = scan_value(S, &member, 0)
                    if rc == OK:
                        item_error(S, IE_NOT_OBJECT, NULL)
                        S.count += 1
            else:
                rc = scan_value(S, &member, 0)
            if rc != OK:
                return rc
        S.depth -= 1
        return OK
    # an object
    while True:
        skip_ws(S)
        if S.i >= S.n:
            return E_JSON
        if S.d[S.i] == 125 and first:
            S.i += 1
            break
        if not first:
            if S.d[S.i] == 125:
                S.i += 1
                break
            if S.d[S.i] != 44:
                return E_JSON
            S.i += 1
            skip_ws(S)
        first = False
        if S.i >= S.n or S.d[S.i] != 34:
            return E_JSON
        rc = scan_string(S, &k)
        if rc != OK:
            return rc
        skip_ws(S)
        if S.i >= S.n or S.d[S.i] != 58:
            return E_JSON
        S.i += 1
        skip_ws(S)
        sub = 0
        if role == 1:
            if key_is(S, &k, b"items", 5):
                # a repeated "items" member: the last one counts
                S.out.len = 0
                S.idx.len = 0
                S.count = 0
                S.first_without_md5 = -1
                S.bad_item = -1
                S.last_key_len = 0
                sub = 2 if S.i < S.n and S.d[S.i] == 91 else 0
                rc = scan_value(S, &S.items, sub)
                if rc == OK and sub == 2:
                    S.items.kind = K_STR  # "an array" (any non-null, non-array kind is an error)
                elif rc == OK and S.items.kind == K_STR:
                    S.items.kind = K_OTHER
            elif key_is(S, &k, b"nextPageToken", 13):
                rc = scan_value(S, &S.token, 0)
            elif key_is(S, &k, b"error", 5):
                S.has_error = True
                S.err_code.kind = K_ABSENT
                S.err_msg.kind = K_ABSENT
                rc = scan_value(S, &member, 4 if S.i < S.n and S.d[S.i] == 123 else 0)
            else:
                rc = scan_value(S, &member, 0)
        elif role == 3:
            if key_is(S, &k, b"name", 4):
                rc = scan_value(S, &fields[F_NAME], 0)
            elif key_is(S, &k, b"size", 4):
                rc = scan_value(S, &fields[F_SIZE], 0)
            elif key_is(S, &k, b"md5Hash", 7):
                rc = scan_value(S, &fields[F_MD5], 0)
            elif key_is(S, &k, b"generation", 10):
                rc = scan_value(S, &fields[F_GEN], 0)
            elif key_is(S, &k, b"crc32c", 6):
                rc = scan_value(S, &fields[F_CRC], 0)
            else:
                rc = scan_value(S, &member, 0)
        elif role == 4:
            if key_is(S, &k, b"code", 4):
                rc = scan_value(S, &S.err_code, 0)
            elif key_is(S, &k, b"message", 7):
                rc = scan_value(S, &S.err_msg, 0)
            else:
                rc = scan_value(S, &member, 0)
        else:
            rc = scan_value(S, &member, 0)
        if rc != OK:
            return rc
    S.depth -= 1
    if role == 3:
        return finish_item(S, fields)
    return OK


cdef int scan_value(State *S, Val *v, int role) noexcept nogil:
    """One value at S.i. role: 0 any value; 1 the top-level object; 2 the items
    array; 3 one item object; 4 the error object."""
    cdef unsigned char c
    if S.i >= S.n:
        return E_JSON
    c = S.d[S.i]
    v.esc = False
    v.len = 0
    if c == 34:
        return scan_string(S, v)
    if c == 123 or c == 91:
        return scan_container(S, v, role)
    if c == 116:
        v.kind = K_OTHER
        return scan_literal(S, b"true", 4)
    if c == 102:
        v.kind = K_OTHER
        return scan_literal(S, b"false", 5)
    if c == 110:
        v.kind = K_NULL
        return scan_literal(S, b"null", 4)
    if c == 45 or 48 <= c <= 57:
        return scan_number(S, v)
    return E_JSON


cdef int scan_document(State *S) noexcept nogil:
    cdef Val top
    cdef int rc
    skip_ws(S)
    if S.i >= S.n:
        return E_JSON
    if S.d[S.i] == 123:
        rc = scan_value(S, &top, 1)
    else:
        rc = scan_value(S, &top, 0)
        if rc == OK:
            top.kind = K_NUM  # marks "not an object"
    if rc != OK:
        return rc
    skip_ws(S)
    if S.i != S.n:
        return E_JSON
    return OK if top.kind == K_OTHER else -3


cdef class GCSListPage:
    """One parsed page: the objects in listing order plus what is needed to fetch the next page."""

    cdef readonly str kind
    cdef readonly Py_ssize_t count
    cdef readonly bint is_truncated
    cdef readonly str next_page_token
    cdef readonly str last_key
    cdef readonly Py_ssize_t first_without_md5
    cdef bytes _buf
    cdef bytes _idx
    cdef const int64_t *_ix
    cdef const char *_b

    def __cinit__(self):
        self.kind = "gcs"
        self.count = 0
        self.next_page_token = ""
        self.last_key = ""
        self.first_without_md5 = -1
        self._buf = b""
        self._idx = b""
        self._b = PyBytes_AS_STRING(self._buf)
        self._ix = <const int64_t *>PyBytes_AS_STRING(self._idx)

    cdef inline Py_ssize_t _row(self, Py_ssize_t i) except -1:
        if i < 0 or i >= self.count:
            raise IndexError(f"entry index {i} out of range for a page of {self.count}")
        return i * NI

    cdef inline str _col(self, Py_ssize_t r, int c):
        cdef int64_t ln = self._ix[r + c + 1]
        if ln <= 0:
            return ""
        return PyUnicode_DecodeUTF8(self._b + self._ix[r + c], ln, NULL)

    def key(self, Py_ssize_t i):
        return self._col(self._row(i), 0)

    def md5_hash(self, Py_ssize_t i):
        return self._col(self._row(i), 2)

    def etag(self, Py_ssize_t i):
        """The digest column ``add_page`` records: the md5Hash (W&B's GCS digest)."""
        return self._col(self._row(i), 2)

    def generation(self, Py_ssize_t i):
        return self._col(self._row(i), 4)

    def version_id(self, Py_ssize_t i):
        """The version column ``add_page`` records: the generation."""
        return self._col(self._row(i), 4)

    def crc32c(self, Py_ssize_t i):
        return self._col(self._row(i), 6)

    def size(self, Py_ssize_t i):
        return self._ix[self._row(i) + 8]

    def keys(self):
        return [self._col(i * NI, 0) for i in range(self.count)]

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"<GCSListPage count={self.count} truncated={self.is_truncated} last_key={self.last_key!r}>"

    def _raw(self):
        """(strings, index, count) for ``ManifestWriter.add_page``; not public API."""
        return self._buf, self._idx, self.count


cdef str _text(State *S, Val *v):
    """A string value decoded to str ("" for other kinds); None when it holds a lone surrogate."""
    cdef bytes tmp
    cdef Py_ssize_t m
    if v.kind != K_STR or v.len == 0:
        return ""
    if not v.esc:
        return PyUnicode_DecodeUTF8(<const char *>S.d + v.off, <Py_ssize_t>v.len, NULL)
    tmp = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>v.len)
    m = decode_into(S, v, PyBytes_AS_STRING(tmp), v.len)
    if m < 0:
        return None
    return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(tmp), m, NULL)


def _bad(what):
    return GCSPageError(f"malformed GCS listing: {what}")


def parse_gcs_page(body):
    """Parses an ``objects.list`` response body (see ``_gcspage_py`` for the grammar).

    Raises:
        GCSPageError: the body is not JSON, not a listing, malformed, or a GCS
            error document (its code and message are in the text).
    """
    cdef const unsigned char[::1] view = memoryview(body).cast("B")
    cdef State S
    cdef int rc
    cdef GCSListPage page
    memset(&S, 0, sizeof(S))
    S.n = view.shape[0]
    S.d = &view[0] if S.n else <const unsigned char *>b""
    S.first_without_md5 = -1
    S.bad_item = -1
    try:
        if S.n >= NOGIL_MIN:
            with nogil:
                rc = scan_document(&S)
        else:
            rc = scan_document(&S)
        if rc == E_NOMEM:
            raise MemoryError()
        if rc == E_JSON:
            raise _bad("invalid JSON")
        if rc == -3:
            raise _bad("the top level is not an object")
        if S.has_error:
            code = ""
            if S.err_code.kind == K_NUM:
                code = PyUnicode_DecodeUTF8(<const char *>S.d + S.err_code.off, <Py_ssize_t>S.err_code.len, NULL)
            elif S.err_code.kind == K_STR:
                code = _text(&S, &S.err_code)
            message = _text(&S, &S.err_msg) if S.err_msg.kind == K_STR else ""
            raise GCSPageError(f"GCS error {code or ''}: {message or ''}")
        page = GCSListPage.__new__(GCSListPage)
        if S.token.kind != K_ABSENT and S.token.kind != K_NULL:
            if S.token.kind != K_STR:
                raise _bad("nextPageToken is not a string")
            token = _text(&S, &S.token)
            if token is None:
                raise _bad("nextPageToken is not valid Unicode")
            page.next_page_token = token
            page.is_truncated = bool(token)
        if S.items.kind == K_ABSENT or S.items.kind == K_NULL:
            return page
        if S.items.kind != K_STR:
            raise _bad("items is not an array")
        if S.bad_item >= 0:
            n = S.bad_item
            if S.bad_kind == IE_NOT_OBJECT:
                raise _bad(f"items[{n}] is not an object")
            if S.bad_kind == IE_NO_NAME:
                raise _bad(f"items[{n}] has no name")
            if S.bad_kind == IE_NAME_UNICODE:
                raise _bad(f"items[{n}].name is not valid Unicode")
            name = _text(&S, &S.bad_name)
            if S.bad_kind == IE_SIZE:
                raise _bad(f"bad or missing size for object {name!r}")
            if S.bad_kind == IE_GEN:
                raise _bad(f"bad generation for object {name!r}")
            if S.bad_kind == IE_MD5_TYPE:
                raise _bad(f"md5Hash of object {name!r} is not a string")
            if S.bad_kind == IE_CRC_TYPE:
                raise _bad(f"crc32c of object {name!r} is not a string")
            if S.bad_kind == IE_MD5_FORMAT:
                raise _bad(f"md5Hash of object {name!r} is not a base64 md5")
            raise _bad(f"crc32c of object {name!r} is not valid Unicode")
        page.count = <Py_ssize_t>S.count
        page.first_without_md5 = S.first_without_md5
        page._buf = PyBytes_FromStringAndSize(S.out.p, <Py_ssize_t>S.out.len) if S.out.len else b""
        page._idx = PyBytes_FromStringAndSize(S.idx.p, <Py_ssize_t>S.idx.len) if S.idx.len else b""
        page._b = PyBytes_AS_STRING(page._buf)
        page._ix = <const int64_t *>PyBytes_AS_STRING(page._idx)
        if S.count:
            page.last_key = PyUnicode_DecodeUTF8(S.out.p + S.last_key_off, <Py_ssize_t>S.last_key_len, NULL)
        return page
    finally:
        free(S.out.p)
        free(S.idx.p)
