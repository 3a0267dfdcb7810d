# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled S3 listing-page parser; the twin is ``_s3page_py.py`` (same API, same results).

The scanner itself is ``depot_s3page.h``. A page keeps every string in one
``bytes`` buffer and one ``bytes`` index of int64 columns per kept entry; no
Python object exists per key until someone asks for one.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t

from depot.native._s3page_py import S3PageError

cdef extern from "depot_s3page.h" nogil:
    ctypedef struct dp_span:
        int64_t off
        int64_t len
    ctypedef struct dp_entry:
        int kind
        dp_span f[7]
    ctypedef struct dp_parse:
        char *buf
        size_t len
        size_t npfx
        dp_span *pfx
        dp_span top[7]
        int kind
        int64_t *idx
        size_t nkept
        int truncated
        dp_span last_key
        size_t bad_entry
        dp_entry *ents
        char err[256]
        size_t errlen
    int DP_OK, DP_ERR, DP_NOMEM, DP_ERROR_DOC, DP_BAD_SIZE, DP_NO_KEY
    int DP_K_V2, DP_K_VERSIONS, DP_K_AZURE
    int DP_T_NCT, DP_T_NKM, DP_T_NVIM, DP_T_CODE, DP_T_MSG
    int DP_F_KEY
    int DP_E_CONTENTS, DP_E_VERSION, DP_E_DELETE, DP_E_BLOB
    int DP_NI, DP_I_KEY_OFF, DP_I_KEY_LEN, DP_I_ETAG_OFF, DP_I_ETAG_LEN
    int DP_I_VID_OFF, DP_I_VID_LEN, DP_I_LM_OFF, DP_I_LM_LEN, DP_I_SIZE
    void dp_init(dp_parse *P)
    void dp_free(dp_parse *P)
    int dp_scan(dp_parse *P, const char *d, size_t n)
    int dp_finish(dp_parse *P)

__all__ = ["ListPage", "S3PageError", "parse_list_page"]

# Pages below this size parse faster than the GIL round trip costs.
cdef enum:
    _NOGIL_MIN = 32 * 1024


cdef inline str _span_str(dp_parse *P, dp_span s):
    if s.len <= 0:
        return ""
    return PyUnicode_DecodeUTF8(P.buf + s.off, s.len, NULL)


cdef class ListPage:
    """One parsed listing page: the kept objects plus the fields needed to fetch the next page."""

    cdef readonly str kind
    cdef readonly Py_ssize_t count
    cdef readonly bint is_truncated
    cdef readonly str next_continuation_token
    cdef readonly str next_key_marker
    cdef readonly str next_version_id_marker
    cdef readonly list common_prefixes
    cdef readonly str last_key
    cdef bytes _buf
    cdef bytes _idx
    cdef const int64_t *_ix
    cdef const char *_b

    def __cinit__(self):
        self.kind = ""
        self.count = 0
        self.next_continuation_token = ""
        self.next_key_marker = ""
        self.next_version_id_marker = ""
        self.common_prefixes = []
        self.last_key = ""
        self._buf = b""
        self._idx = b""
        self._b = PyBytes_AS_STRING(self._buf)
        self._ix = <const int64_t *>PyBytes_AS_STRING(self._idx)

    cdef inline Py_ssize_t _row(self, Py_ssize_t i) except -1:
        if i < 0 or i >= self.count:
            raise IndexError(f"entry index {i} out of range for a page of {self.count}")
        return i * DP_NI

    cdef inline str _col(self, Py_ssize_t r, int off_col, int len_col):
        cdef int64_t ln = self._ix[r + len_col]
        if ln <= 0:
            return ""
        return PyUnicode_DecodeUTF8(self._b + self._ix[r + off_col], ln, NULL)

    def key(self, Py_ssize_t i):
        return self._col(self._row(i), DP_I_KEY_OFF, DP_I_KEY_LEN)

    def etag(self, Py_ssize_t i):
        return self._col(self._row(i), DP_I_ETAG_OFF, DP_I_ETAG_LEN)

    def version_id(self, Py_ssize_t i):
        return self._col(self._row(i), DP_I_VID_OFF, DP_I_VID_LEN)

    def last_modified(self, Py_ssize_t i):
        return self._col(self._row(i), DP_I_LM_OFF, DP_I_LM_LEN)

    def size(self, Py_ssize_t i):
        return self._ix[self._row(i) + DP_I_SIZE]

    def keys(self):
        return [self._col(i * DP_NI, DP_I_KEY_OFF, DP_I_KEY_LEN) for i in range(self.count)]

    def __len__(self):
        return self.count

    def __repr__(self):
        return (
            f"<ListPage kind={self.kind} count={self.count} truncated={self.is_truncated} "
            f"last_key={self.last_key!r}>"
        )

    def _raw(self):
        """(strings, index, count) for the compiled ManifestWriter.add_page; not public API.

        ``index`` holds 9 native int64 per entry: key, etag, version id and
        last-modified as (offset, length) into ``strings``, then the size.
        """
        return self._buf, self._idx, self.count


def parse_list_page(body):
    """Parses a ListObjectsV2, ListObjectVersions or Azure List Blobs response body.

    Raises:
        S3PageError: the body is truncated, malformed, not a listing, or an S3
            ``<Error>`` document (its code and message are in the text).
    """
    cdef const unsigned char[::1] view = memoryview(body).cast("B")
    cdef size_t n = view.shape[0]
    cdef const char *d = <const char *>&view[0] if n else <const char *>""
    cdef dp_parse P
    cdef int rc
    cdef ListPage page
    dp_init(&P)
    try:
        if n >= _NOGIL_MIN:
            with nogil:
                rc = dp_scan(&P, d, n)
                if rc == DP_OK:
                    rc = dp_finish(&P)
        else:
            rc = dp_scan(&P, d, n)
            if rc == DP_OK:
                rc = dp_finish(&P)
        if rc == DP_NOMEM:
            raise MemoryError()
        if rc == DP_ERR:
            raise S3PageError(P.err[:P.errlen].decode("latin-1"))
        if rc == DP_ERROR_DOC:
            raise S3PageError(
                f"S3 error {_span_str(&P, P.top[DP_T_CODE])}: {_span_str(&P, P.top[DP_T_MSG])}"
            )
        if rc == DP_NO_KEY:
            ename = {DP_E_CONTENTS: "Contents", DP_E_VERSION: "Version", DP_E_DELETE: "DeleteMarker",
                     DP_E_BLOB: "Blob"}[P.ents[P.bad_entry].kind]
            raise S3PageError(f"malformed listing: <{ename}> without <{'Name' if P.kind == DP_K_AZURE else 'Key'}>")
        if rc == DP_BAD_SIZE:
            key = _span_str(&P, P.ents[P.bad_entry].f[DP_F_KEY])
            size_field = "Content-Length" if P.kind == DP_K_AZURE else "Size"
            raise S3PageError(f"malformed listing: bad or missing <{size_field}> for key {key!r}")
        page = ListPage.__new__(ListPage)
        page.kind = "v2" if P.kind == DP_K_V2 else "azure" if P.kind == DP_K_AZURE else "versions"
        page.count = <Py_ssize_t>P.nkept
        page.is_truncated = P.truncated
        page.next_continuation_token = _span_str(&P, P.top[DP_T_NCT])
        page.next_key_marker = _span_str(&P, P.top[DP_T_NKM])
        page.next_version_id_marker = _span_str(&P, P.top[DP_T_NVIM])
        page.common_prefixes = [_span_str(&P, P.pfx[i]) for i in range(P.npfx)]
        page.last_key = _span_str(&P, P.last_key)
        page._buf = PyBytes_FromStringAndSize(P.buf, <Py_ssize_t>P.len) if P.len else b""
        page._idx = PyBytes_FromStringAndSize(<const char *>P.idx,
                                              <Py_ssize_t>(P.nkept * DP_NI * sizeof(int64_t))) \
            if P.nkept else b""
        page._b = PyBytes_AS_STRING(page._buf)
        page._ix = <const int64_t *>PyBytes_AS_STRING(page._idx)
        return page
    finally:
        dp_free(&P)
