/* S3 listing-page scanner for _s3page.pyx: the C twin of _s3page_py.py.
 *
 * Same grammar, same decisions, same messages as the Python twin; read that
 * file first, this one follows it step by step. The scanner never creates a
 * Python object: every captured text lands, entity-decoded, in one growing
 * byte buffer and is addressed by (offset, length) spans.
 */
#ifndef DEPOT_S3PAGE_H
#define DEPOT_S3PAGE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DP_MAX_DEPTH 256

enum { DP_F_KEY, DP_F_ETAG, DP_F_SIZE, DP_F_LM, DP_F_VID, DP_F_ISLATEST, DP_F_ISFOLDER, DP_NF };
enum { DP_T_ISTRUNC, DP_T_NCT, DP_T_NKM, DP_T_NVIM, DP_T_ENC, DP_T_CODE, DP_T_MSG, DP_NT };
enum { DP_E_NONE, DP_E_CONTENTS, DP_E_VERSION, DP_E_DELETE, DP_E_PREFIXES, DP_E_BLOB, DP_E_BLOBPFX };
enum { DP_K_NONE, DP_K_V2, DP_K_VERSIONS, DP_K_ERROR, DP_K_AZURE };
/* Columns of one kept entry in the output index (int64 each). */
enum { DP_I_KEY_OFF, DP_I_KEY_LEN, DP_I_ETAG_OFF, DP_I_ETAG_LEN, DP_I_VID_OFF, DP_I_VID_LEN,
       DP_I_LM_OFF, DP_I_LM_LEN, DP_I_SIZE, DP_NI };

typedef struct { int64_t off, len; } dp_span; /* len < 0: absent */

typedef struct {
    int kind;
    dp_span f[DP_NF];
} dp_entry;

typedef struct {
    char *buf; size_t len, cap;               /* decoded text of every captured field */
    dp_entry *ents; size_t nents, capents;    /* every object element, kept or not */
    dp_span *pfx; size_t npfx, cappfx;        /* CommonPrefixes/Prefix */
    dp_span top[DP_NT];
    int kind;
    int utf8_bad;
    /* Results of dp_finish. */
    int64_t *idx; size_t nkept, capidx;
    int truncated;
    dp_span last_key;
    size_t bad_entry;                         /* DP_BAD_SIZE: which entry */
    char err[256];
    size_t errlen;                            /* err may hold NUL bytes from tag names */
} dp_parse;

#define DP_OK 0
#define DP_ERR -1        /* message in err */
#define DP_NOMEM -2
#define DP_ERROR_DOC 2   /* an <Error> document: top Code/Message hold the details */
#define DP_BAD_SIZE 3    /* entry bad_entry has a bad or missing <Size> */
#define DP_NO_KEY 4      /* entry bad_entry has no <Key> */

#define DP_FAIL(...) do { snprintf(P->err, sizeof P->err, __VA_ARGS__); P->errlen = strlen(P->err); return DP_ERR; } while (0)

/* "<pre><name[:64]><post>", byte for byte (names may hold any byte, even NUL). */
static int dp_fail_name(dp_parse *P, const char *pre, const char *name, size_t nl, const char *post) {
    size_t a = strlen(pre), c = strlen(post);
    if (nl > 64) nl = 64;
    memcpy(P->err, pre, a);
    memcpy(P->err + a, name, nl);
    memcpy(P->err + a + nl, post, c);
    P->errlen = a + nl + c;
    return DP_ERR;
}
static void dp_init(dp_parse *P) {
    memset(P, 0, sizeof *P);
    for (int i = 0; i < DP_NT; i++) P->top[i].len = -1;
    P->last_key.len = 0;
}

static void dp_free(dp_parse *P) {
    free(P->buf);
    free(P->ents);
    free(P->pfx);
    free(P->idx);
    P->buf = NULL; P->ents = NULL; P->pfx = NULL; P->idx = NULL;
}

static int dp_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static inline int dp_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static inline int dp_hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Strict UTF-8, as Python's decoder: no overlongs, surrogates or > U+10FFFF. */
static int dp_utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return 0;
        if (i + need >= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

static int dp_put(dp_parse *P, const char *s, size_t n) {
    if (dp_grow((void **)&P->buf, &P->cap, P->len + n, 1)) return DP_NOMEM;
    memcpy(P->buf + P->len, s, n);
    P->len += n;
    return DP_OK;
}

/* Appends raw element text, resolving entity and character references. */
static int dp_put_text(dp_parse *P, const char *raw, size_t n) {
    const char *amp = (const char *)memchr(raw, '&', n);
    if (!amp) return dp_put(P, raw, n);
    size_t pos = 0;
    while (amp) {
        size_t a = (size_t)(amp - raw);
        if (dp_put(P, raw + pos, a - pos)) return DP_NOMEM;
        size_t lim = a + 12 < n ? a + 12 : n;
        const char *semi = memchr(raw + a + 1, ';', lim > a + 1 ? lim - (a + 1) : 0);
        if (!semi) {
            DP_FAIL("malformed XML: unterminated entity reference");
        }
        const char *name = raw + a + 1;
        size_t nl = (size_t)(semi - name);
        const char *rep = NULL;
        if (nl == 3 && !memcmp(name, "amp", 3)) rep = "&";
        else if (nl == 2 && !memcmp(name, "lt", 2)) rep = "<";
        else if (nl == 2 && !memcmp(name, "gt", 2)) rep = ">";
        else if (nl == 4 && !memcmp(name, "quot", 4)) rep = "\"";
        else if (nl == 4 && !memcmp(name, "apos", 4)) rep = "'";
        if (rep) {
            if (dp_put(P, rep, 1)) return DP_NOMEM;
        } else {
            int64_t cp = -1;
            if (nl > 2 && name[0] == '#' && name[1] == 'x') {
                cp = 0;
                for (size_t k = 2; k < nl; k++) {
                    int v = dp_hexval((unsigned char)name[k]);
                    if (v < 0) { cp = -1; break; }
                    cp = cp * 16 + v;
                }
            } else if (nl > 1 && name[0] == '#') {
                cp = 0;
                for (size_t k = 1; k < nl; k++) {
                    if (name[k] < '0' || name[k] > '9') { cp = -1; break; }
                    cp = cp * 10 + (name[k] - '0');
                }
            }
            if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return dp_fail_name(P, "malformed XML: bad entity reference &", name, nl, ";");
            }
            char u[4];
            size_t ul;
            if (cp < 0x80) { u[0] = (char)cp; ul = 1; }
            else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); ul = 2; }
            else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F)); ul = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); ul = 4;
            }
            if (dp_put(P, u, ul)) return DP_NOMEM;
        }
        pos = (size_t)(semi - raw) + 1;
        amp = pos < n ? (const char *)memchr(raw + pos, '&', n - pos) : NULL;
    }
    return dp_put(P, raw + pos, n - pos);
}

static inline int dp_is(const char *name, size_t nl, const char *lit) {
    size_t l = strlen(lit);
    return nl == l && memcmp(name, lit, l) == 0;
}

static int dp_top_field(const char *name, size_t nl) {
    switch (nl) {
    case 4: if (!memcmp(name, "Code", 4)) return DP_T_CODE; break;
    case 7: if (!memcmp(name, "Message", 7)) return DP_T_MSG; break;
    case 11: if (!memcmp(name, "IsTruncated", 11)) return DP_T_ISTRUNC; break;
    case 12: if (!memcmp(name, "EncodingType", 12)) return DP_T_ENC; break;
    case 13: if (!memcmp(name, "NextKeyMarker", 13)) return DP_T_NKM; break;
    case 19: if (!memcmp(name, "NextVersionIdMarker", 19)) return DP_T_NVIM; break;
    case 21: if (!memcmp(name, "NextContinuationToken", 21)) return DP_T_NCT; break;
    }
    return -1;
}

static int dp_entry_field(const char *name, size_t nl) {
    switch (nl) {
    case 3: if (!memcmp(name, "Key", 3)) return DP_F_KEY; break;
    case 4:
        if (!memcmp(name, "ETag", 4)) return DP_F_ETAG;
        if (!memcmp(name, "Size", 4)) return DP_F_SIZE;
        break;
    case 8: if (!memcmp(name, "IsLatest", 8)) return DP_F_ISLATEST; break;
    case 9: if (!memcmp(name, "VersionId", 9)) return DP_F_VID; break;
    case 12: if (!memcmp(name, "LastModified", 12)) return DP_F_LM; break;
    }
    return -1;
}

/* Azure List Blobs: <Blob> children (depth 4) and <Blob><Properties> children (depth 5). */
static int dp_az_blob_field(const char *name, size_t nl) {
    if (dp_is(name, nl, "Name")) return DP_F_KEY;
    if (dp_is(name, nl, "VersionId")) return DP_F_VID;
    return -1;
}

static int dp_az_prop_field(const char *name, size_t nl) {
    if (dp_is(name, nl, "Etag")) return DP_F_ETAG;
    if (dp_is(name, nl, "Content-Length")) return DP_F_SIZE;
    if (dp_is(name, nl, "Last-Modified")) return DP_F_LM;
    return -1;
}

#define DP_TRUNC_TAG() DP_FAIL("truncated XML: document ends inside a tag")

/* Where a finished capture goes. */
enum { DP_CAP_TOP, DP_CAP_PREFIX, DP_CAP_ENTRY };

static int dp_end_capture(dp_parse *P, int target, int field, dp_entry *cur, size_t start) {
    dp_span sp = {(int64_t)start, (int64_t)(P->len - start)};
    if (!dp_utf8_ok((const unsigned char *)P->buf + start, P->len - start)) P->utf8_bad = 1;
    if (target == DP_CAP_TOP) {
        P->top[field] = sp;
    } else if (target == DP_CAP_PREFIX) {
        if (dp_grow((void **)&P->pfx, &P->cappfx, P->npfx + 1, sizeof(dp_span))) return DP_NOMEM;
        P->pfx[P->npfx++] = sp;
    } else {
        cur->f[field] = sp;
    }
    return DP_OK;
}

static int dp_end_entry(dp_parse *P, dp_entry *cur) {
    if (cur->kind == DP_E_PREFIXES || cur->kind == DP_E_BLOBPFX) return DP_OK;
    if (dp_grow((void **)&P->ents, &P->capents, P->nents + 1, sizeof(dp_entry))) return DP_NOMEM;
    P->ents[P->nents++] = *cur;
    return DP_OK;
}

/* Pass 1: the structure. Fills spans; raises only structural errors. */
static int dp_scan(dp_parse *P, const char *d, size_t n) {
    size_t pos = 0;
    if (n >= 3 && !memcmp(d, "\xef\xbb\xbf", 3)) pos = 3;
    while (pos < n && dp_ws((unsigned char)d[pos])) pos++;
    if (n - pos >= 5 && !memcmp(d + pos, "<?xml", 5)) {
        const char *e = memmem(d + pos, n - pos, "?>", 2);
        if (!e) DP_FAIL("truncated XML: unterminated XML declaration");
        pos = (size_t)(e - d) + 2;
    }
    size_t st_off[DP_MAX_DEPTH], st_len[DP_MAX_DEPTH];
    int depth = 0, root_done = 0;
    int ent_depth = 2; /* depth of one object's element: 3 in Azure's <Blobs><Blob> */
    int entry_kind = DP_E_NONE;
    dp_entry cur;
    int cap = -1, cap_depth = -1, cap_target = 0;
    size_t cap_start = 0;
    int rc;

    while (pos < n) {
        const char *ltp = (const char *)memchr(d + pos, '<', n - pos);
        size_t lt = ltp ? (size_t)(ltp - d) : n;
        if (lt > pos) {
            if (depth == 0) {
                for (size_t k = pos; k < lt; k++)
                    if (!dp_ws((unsigned char)d[k])) DP_FAIL("malformed XML: text outside the root element");
            } else if (cap >= 0 && depth == cap_depth) {
                if ((rc = dp_put_text(P, d + pos, lt - pos))) return rc;
            }
            pos = lt;
            if (pos >= n) break;
        }
        if (n - pos >= 4 && !memcmp(d + pos, "<!--", 4)) {
            const char *e = memmem(d + pos + 4, n - pos - 4, "-->", 3);
            if (!e) DP_FAIL("truncated XML: unterminated comment");
            pos = (size_t)(e - d) + 3;
            continue;
        }
        if (pos + 1 >= n) DP_TRUNC_TAG();
        unsigned char c = (unsigned char)d[pos + 1];
        if (c == '!' || c == '?') DP_FAIL("unsupported XML: DOCTYPE, CDATA or processing instruction");
        if (c == '/') {
            size_t q = pos + 2;
            while (q < n && !dp_ws((unsigned char)d[q]) && d[q] != '>') q++;
            size_t nstart = pos + 2, nl = q - nstart;
            while (q < n && dp_ws((unsigned char)d[q])) q++;
            if (q >= n) DP_TRUNC_TAG();
            if (d[q] != '>') DP_FAIL("malformed XML: bad end tag");
            if (depth == 0 || st_len[depth - 1] != nl || memcmp(d + st_off[depth - 1], d + nstart, nl))
                return dp_fail_name(P, "malformed XML: unexpected end tag </", d + nstart, nl, ">");
            pos = q + 1;
            if (cap >= 0 && depth == cap_depth) {
                if ((rc = dp_end_capture(P, cap_target, cap, &cur, cap_start))) return rc;
                cap = -1;
            } else if (depth == ent_depth && entry_kind) {
                if ((rc = dp_end_entry(P, &cur))) return rc;
                entry_kind = DP_E_NONE;
            }
            depth--;
            if (depth == 0) root_done = 1;
            continue;
        }
        /* start tag */
        size_t q = pos + 1;
        while (q < n && !dp_ws((unsigned char)d[q]) && d[q] != '/' && d[q] != '>') q++;
        const char *name = d + pos + 1;
        size_t nl = q - (pos + 1);
        if (!nl) DP_FAIL("malformed XML: empty tag name");
        int empty = 0;
        for (;;) {
            while (q < n && dp_ws((unsigned char)d[q])) q++;
            if (q >= n) DP_TRUNC_TAG();
            c = (unsigned char)d[q];
            if (c == '>') { q++; break; }
            if (c == '/') {
                if (q + 1 >= n) DP_TRUNC_TAG();
                if (d[q + 1] != '>') DP_FAIL("malformed XML: bad empty-element tag");
                empty = 1;
                q += 2;
                break;
            }
            size_t a = q;
            while (q < n && !dp_ws((unsigned char)d[q]) && d[q] != '=' && d[q] != '/' && d[q] != '>') q++;
            if (q == a) DP_FAIL("malformed XML: bad attribute");
            while (q < n && dp_ws((unsigned char)d[q])) q++;
            if (q >= n) DP_TRUNC_TAG();
            if (d[q] != '=') DP_FAIL("malformed XML: attribute without value");
            q++;
            while (q < n && dp_ws((unsigned char)d[q])) q++;
            if (q >= n) DP_TRUNC_TAG();
            char quote = d[q];
            if (quote != '"' && quote != '\'') DP_FAIL("malformed XML: unquoted attribute value");
            const char *e = (const char *)memchr(d + q + 1, quote, n - q - 1);
            if (!e) DP_TRUNC_TAG();
            q = (size_t)(e - d) + 1;
        }
        pos = q;
        if (root_done) DP_FAIL("malformed XML: content after the root element");
        int nd = depth + 1;
        if (nd == 1) {
            if (dp_is(name, nl, "ListBucketResult")) P->kind = DP_K_V2;
            else if (dp_is(name, nl, "ListVersionsResult")) P->kind = DP_K_VERSIONS;
            else if (dp_is(name, nl, "EnumerationResults")) { P->kind = DP_K_AZURE; ent_depth = 3; }
            else if (dp_is(name, nl, "Error")) P->kind = DP_K_ERROR;
            else return dp_fail_name(P, "not an S3 listing page: root element <", name, nl, ">");
        } else if (P->kind == DP_K_AZURE) {
            if (nd == 2) {
                if (dp_is(name, nl, "NextMarker")) { cap = DP_T_NCT; cap_depth = 2; cap_target = DP_CAP_TOP; }
            } else if (nd == 3 && dp_is(d + st_off[1], st_len[1], "Blobs") &&
                       (dp_is(name, nl, "Blob") || dp_is(name, nl, "BlobPrefix"))) {
                entry_kind = dp_is(name, nl, "Blob") ? DP_E_BLOB : DP_E_BLOBPFX;
                cur.kind = entry_kind;
                for (int i = 0; i < DP_NF; i++) { cur.f[i].off = 0; cur.f[i].len = -1; }
            } else if (nd == 4 && entry_kind && cap < 0) {
                if (entry_kind == DP_E_BLOBPFX) {
                    if (dp_is(name, nl, "Name")) { cap = 0; cap_depth = 4; cap_target = DP_CAP_PREFIX; }
                } else {
                    int f = dp_az_blob_field(name, nl);
                    if (f >= 0) { cap = f; cap_depth = 4; cap_target = DP_CAP_ENTRY; }
                }
            } else if (nd == 5 && entry_kind == DP_E_BLOB && cap < 0 &&
                       dp_is(d + st_off[3], st_len[3], "Properties")) {
                int f = dp_az_prop_field(name, nl);
                if (f >= 0) { cap = f; cap_depth = 5; cap_target = DP_CAP_ENTRY; }
            } else if (nd == 5 && entry_kind == DP_E_BLOB && cap < 0 &&
                       dp_is(d + st_off[3], st_len[3], "Metadata") && dp_is(name, nl, "hdi_isfolder")) {
                /* A directory stub (ADLS Gen2): not a file; W&B skips it. */
                cap = DP_F_ISFOLDER; cap_depth = 5; cap_target = DP_CAP_ENTRY;
            }
        } else if (nd == 2) {
            int t = dp_top_field(name, nl);
            if (t >= 0) {
                cap = t; cap_depth = 2; cap_target = DP_CAP_TOP;
            } else {
                int ek = DP_E_NONE;
                if (dp_is(name, nl, "CommonPrefixes")) ek = DP_E_PREFIXES;
                else if (P->kind == DP_K_V2 && dp_is(name, nl, "Contents")) ek = DP_E_CONTENTS;
                else if (P->kind == DP_K_VERSIONS && dp_is(name, nl, "Version")) ek = DP_E_VERSION;
                else if (P->kind == DP_K_VERSIONS && dp_is(name, nl, "DeleteMarker")) ek = DP_E_DELETE;
                if (ek) {
                    entry_kind = ek;
                    cur.kind = ek;
                    for (int i = 0; i < DP_NF; i++) { cur.f[i].off = 0; cur.f[i].len = -1; }
                }
            }
        } else if (nd == 3 && entry_kind && cap < 0) {
            if (entry_kind == DP_E_PREFIXES) {
                if (dp_is(name, nl, "Prefix")) { cap = 0; cap_depth = 3; cap_target = DP_CAP_PREFIX; }
            } else {
                int f = dp_entry_field(name, nl);
                if (f >= 0) { cap = f; cap_depth = 3; cap_target = DP_CAP_ENTRY; }
            }
        }
        if (cap >= 0 && cap_depth == nd) cap_start = P->len;
        if (empty) {
            if (cap >= 0 && cap_depth == nd) {
                if ((rc = dp_end_capture(P, cap_target, cap, &cur, cap_start))) return rc;
                cap = -1;
            } else if (nd == ent_depth && entry_kind) {
                if ((rc = dp_end_entry(P, &cur))) return rc;
                entry_kind = DP_E_NONE;
            }
            if (nd == 1) root_done = 1;
        } else {
            if (depth >= DP_MAX_DEPTH) DP_FAIL("malformed XML: elements nested too deeply");
            st_off[depth] = (size_t)(name - d);
            st_len[depth] = nl;
            depth++;
        }
    }
    if (depth) DP_FAIL("truncated XML: document ends before the root element is closed");
    if (!P->kind) DP_FAIL("not an S3 listing page: no root element");
    if (P->utf8_bad) DP_FAIL("malformed XML: text is not valid UTF-8");
    if (P->kind == DP_K_ERROR) return DP_ERROR_DOC;
    return DP_OK;
}

static inline int dp_span_is(const dp_parse *P, dp_span s, const char *lit) {
    size_t l = strlen(lit);
    return s.len == (int64_t)l && memcmp(P->buf + s.off, lit, l) == 0;
}

/* Percent-decoding ('+' is a space) in place; botocore's unquote_plus. */
static int dp_unquote(dp_parse *P, dp_span *s) {
    if (s->len <= 0) return DP_OK;
    char *b = P->buf + s->off;
    size_t n = (size_t)s->len, w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (c == '+') c = ' ';
        else if (c == '%' && i + 2 < n && dp_hexval((unsigned char)b[i + 1]) >= 0 &&
                 dp_hexval((unsigned char)b[i + 2]) >= 0) {
            c = (char)(dp_hexval((unsigned char)b[i + 1]) * 16 + dp_hexval((unsigned char)b[i + 2]));
            i += 2;
        }
        b[w++] = c;
    }
    s->len = (int64_t)w;
    if (!dp_utf8_ok((const unsigned char *)b, w)) DP_FAIL("malformed XML: text is not valid UTF-8");
    return DP_OK;
}

/* Pass 2: field semantics, in the twin's order; builds the index of kept entries. */
static int dp_finish(dp_parse *P) {
    int url = dp_span_is(P, P->top[DP_T_ENC], "url");
    dp_span t = P->top[DP_T_ISTRUNC];
    if (t.len < 0 || dp_span_is(P, t, "false")) P->truncated = 0;
    else if (dp_span_is(P, t, "true")) P->truncated = 1;
    else DP_FAIL("malformed listing: IsTruncated is neither true nor false");
    int rc;
    if (P->kind == DP_K_AZURE) P->truncated = P->top[DP_T_NCT].len > 0; /* no IsTruncated: a NextMarker says it */
    if (url) {
        if ((rc = dp_unquote(P, &P->top[DP_T_NKM]))) return rc;
        for (size_t i = 0; i < P->npfx; i++)
            if ((rc = dp_unquote(P, &P->pfx[i]))) return rc;
    }
    for (size_t i = 0; i < P->nents; i++) {
        dp_entry *e = &P->ents[i];
        if (e->f[DP_F_KEY].len < 0) { P->bad_entry = i; return DP_NO_KEY; }
        if (url && (rc = dp_unquote(P, &e->f[DP_F_KEY]))) return rc;
        P->last_key = e->f[DP_F_KEY];
        if (e->kind == DP_E_DELETE) continue;
        dp_span s = e->f[DP_F_SIZE];
        if (s.len <= 0 || s.len > 19) { P->bad_entry = i; return DP_BAD_SIZE; }
        uint64_t size = 0;
        for (int64_t k = 0; k < s.len; k++) {
            unsigned char ch = (unsigned char)P->buf[s.off + k];
            if (ch < '0' || ch > '9') { P->bad_entry = i; return DP_BAD_SIZE; }
            size = size * 10 + (ch - '0');
        }
        if (size >= (1ull << 63)) { P->bad_entry = i; return DP_BAD_SIZE; }
        if (e->kind == DP_E_VERSION && !dp_span_is(P, e->f[DP_F_ISLATEST], "true")) continue;
        if (dp_span_is(P, e->f[DP_F_ISFOLDER], "true")) continue;
        dp_span et = e->f[DP_F_ETAG];
        if (et.len < 0) { et.off = 0; et.len = 0; }
        if (et.len >= 2 && P->buf[et.off] == '"' && P->buf[et.off + et.len - 1] == '"') {
            et.off++;
            et.len -= 2;
        }
        dp_span vid = e->f[DP_F_VID], lm = e->f[DP_F_LM];
        if (vid.len < 0 || P->kind == DP_K_V2) { vid.off = 0; vid.len = 0; }
        if (lm.len < 0) { lm.off = 0; lm.len = 0; }
        if (dp_grow((void **)&P->idx, &P->capidx, (P->nkept + 1) * DP_NI, sizeof(int64_t))) return DP_NOMEM;
        int64_t *r = P->idx + P->nkept * DP_NI;
        r[DP_I_KEY_OFF] = e->f[DP_F_KEY].off; r[DP_I_KEY_LEN] = e->f[DP_F_KEY].len;
        r[DP_I_ETAG_OFF] = et.off; r[DP_I_ETAG_LEN] = et.len;
        r[DP_I_VID_OFF] = vid.off; r[DP_I_VID_LEN] = vid.len;
        r[DP_I_LM_OFF] = lm.off; r[DP_I_LM_LEN] = lm.len;
        r[DP_I_SIZE] = (int64_t)size;
        P->nkept++;
    }
    return DP_OK;
}

#endif /* DEPOT_S3PAGE_H */
