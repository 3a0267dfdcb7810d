/* MD5 (RFC 1321), written for Depot's native engine.
 *
 * MD5 is only here for W&B-compatible digests; nothing relies on it for
 * security. Kept to one header of static functions so each extension that
 * needs it compiles its own copy and no symbol leaks out of the .so.
 */
#ifndef DEPOT_MD5_H_INCLUDED
#define DEPOT_MD5_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint32_t st[4];
    uint64_t nbytes;          /* total bytes fed so far */
    unsigned char buf[64];    /* partial block */
} depot_md5_ctx;

static inline uint32_t depot_md5_rol(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

static inline uint32_t depot_md5_le32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

/* The four round functions in the forms with the shortest dependency chains. */
#define DEPOT_MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define DEPOT_MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define DEPOT_MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
#define DEPOT_MD5_STEP(f, a, b, c, d, m, t, s) \
    (a) = (b) + depot_md5_rol((a) + f((b), (c), (d)) + (m) + (uint32_t)(t), (s))
/* G as two disjoint terms added separately: (~d & c) does not wait for b, so
   the CPU overlaps it with the previous step (~8% faster overall). */
#define DEPOT_MD5_STEPG(a, b, c, d, m, t, s)              \
    do {                                                 \
        (a) += (m) + (uint32_t)(t) + (~(d) & (c));       \
        (a) += (d) & (b);                                \
        (a) = (b) + depot_md5_rol((a), (s));             \
    } while (0)

static void depot_md5_blocks(uint32_t st[4], const unsigned char *p, size_t nblocks) {
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    while (nblocks--) {
        uint32_t m[16];
        for (int i = 0; i < 16; i++) m[i] = depot_md5_le32(p + 4 * i);
        uint32_t aa = a, bb = b, cc = c, dd = d;

        DEPOT_MD5_STEP(DEPOT_MD5_F, a, b, c, d, m[0], 0xd76aa478, 7);
        DEPOT_MD5_STEP(DEPOT_MD5_F, d, a, b, c, m[1], 0xe8c7b756, 12);
        DEPOT_MD5_STEP(DEPOT_MD5_F, c, d, a, b, m[2], 0x242070db, 17);
        DEPOT_MD5_STEP(DEPOT_MD5_F, b, c, d, a, m[3], 0xc1bdceee, 22);
        DEPOT_MD5_STEP(DEPOT_MD5_F, a, b, c, d, m[4], 0xf57c0faf, 7);
        DEPOT_MD5_STEP(DEPOT_MD5_F, d, a, b, c, m[5], 0x4787c62a, 12);
        DEPOT_MD5_STEP(DEPOT_MD5_F, c, d, a, b, m[6], 0xa8304613, 17);
        DEPOT_MD5_STEP(DEPOT_MD5_F, b, c, d, a, m[7], 0xfd469501, 22);
        DEPOT_MD5_STEP(DEPOT_MD5_F, a, b, c, d, m[8], 0x698098d8, 7);
        DEPOT_MD5_STEP(DEPOT_MD5_F, d, a, b, c, m[9], 0x8b44f7af, 12);
        DEPOT_MD5_STEP(DEPOT_MD5_F, c, d, a, b, m[10], 0xffff5bb1, 17);
        DEPOT_MD5_STEP(DEPOT_MD5_F, b, c, d, a, m[11], 0x895cd7be, 22);
        DEPOT_MD5_STEP(DEPOT_MD5_F, a, b, c, d, m[12], 0x6b901122, 7);
        DEPOT_MD5_STEP(DEPOT_MD5_F, d, a, b, c, m[13], 0xfd987193, 12);
        DEPOT_MD5_STEP(DEPOT_MD5_F, c, d, a, b, m[14], 0xa679438e, 17);
        DEPOT_MD5_STEP(DEPOT_MD5_F, b, c, d, a, m[15], 0x49b40821, 22);

        DEPOT_MD5_STEPG(a, b, c, d, m[1], 0xf61e2562, 5);
        DEPOT_MD5_STEPG(d, a, b, c, m[6], 0xc040b340, 9);
        DEPOT_MD5_STEPG(c, d, a, b, m[11], 0x265e5a51, 14);
        DEPOT_MD5_STEPG(b, c, d, a, m[0], 0xe9b6c7aa, 20);
        DEPOT_MD5_STEPG(a, b, c, d, m[5], 0xd62f105d, 5);
        DEPOT_MD5_STEPG(d, a, b, c, m[10], 0x02441453, 9);
        DEPOT_MD5_STEPG(c, d, a, b, m[15], 0xd8a1e681, 14);
        DEPOT_MD5_STEPG(b, c, d, a, m[4], 0xe7d3fbc8, 20);
        DEPOT_MD5_STEPG(a, b, c, d, m[9], 0x21e1cde6, 5);
        DEPOT_MD5_STEPG(d, a, b, c, m[14], 0xc33707d6, 9);
        DEPOT_MD5_STEPG(c, d, a, b, m[3], 0xf4d50d87, 14);
        DEPOT_MD5_STEPG(b, c, d, a, m[8], 0x455a14ed, 20);
        DEPOT_MD5_STEPG(a, b, c, d, m[13], 0xa9e3e905, 5);
        DEPOT_MD5_STEPG(d, a, b, c, m[2], 0xfcefa3f8, 9);
        DEPOT_MD5_STEPG(c, d, a, b, m[7], 0x676f02d9, 14);
        DEPOT_MD5_STEPG(b, c, d, a, m[12], 0x8d2a4c8a, 20);

        DEPOT_MD5_STEP(DEPOT_MD5_H, a, b, c, d, m[5], 0xfffa3942, 4);
        DEPOT_MD5_STEP(DEPOT_MD5_H, d, a, b, c, m[8], 0x8771f681, 11);
        DEPOT_MD5_STEP(DEPOT_MD5_H, c, d, a, b, m[11], 0x6d9d6122, 16);
        DEPOT_MD5_STEP(DEPOT_MD5_H, b, c, d, a, m[14], 0xfde5380c, 23);
        DEPOT_MD5_STEP(DEPOT_MD5_H, a, b, c, d, m[1], 0xa4beea44, 4);
        DEPOT_MD5_STEP(DEPOT_MD5_H, d, a, b, c, m[4], 0x4bdecfa9, 11);
        DEPOT_MD5_STEP(DEPOT_MD5_H, c, d, a, b, m[7], 0xf6bb4b60, 16);
        DEPOT_MD5_STEP(DEPOT_MD5_H, b, c, d, a, m[10], 0xbebfbc70, 23);
        DEPOT_MD5_STEP(DEPOT_MD5_H, a, b, c, d, m[13], 0x289b7ec6, 4);
        DEPOT_MD5_STEP(DEPOT_MD5_H, d, a, b, c, m[0], 0xeaa127fa, 11);
        DEPOT_MD5_STEP(DEPOT_MD5_H, c, d, a, b, m[3], 0xd4ef3085, 16);
        DEPOT_MD5_STEP(DEPOT_MD5_H, b, c, d, a, m[6], 0x04881d05, 23);
        DEPOT_MD5_STEP(DEPOT_MD5_H, a, b, c, d, m[9], 0xd9d4d039, 4);
        DEPOT_MD5_STEP(DEPOT_MD5_H, d, a, b, c, m[12], 0xe6db99e5, 11);
        DEPOT_MD5_STEP(DEPOT_MD5_H, c, d, a, b, m[15], 0x1fa27cf8, 16);
        DEPOT_MD5_STEP(DEPOT_MD5_H, b, c, d, a, m[2], 0xc4ac5665, 23);

        DEPOT_MD5_STEP(DEPOT_MD5_I, a, b, c, d, m[0], 0xf4292244, 6);
        DEPOT_MD5_STEP(DEPOT_MD5_I, d, a, b, c, m[7], 0x432aff97, 10);
        DEPOT_MD5_STEP(DEPOT_MD5_I, c, d, a, b, m[14], 0xab9423a7, 15);
        DEPOT_MD5_STEP(DEPOT_MD5_I, b, c, d, a, m[5], 0xfc93a039, 21);
        DEPOT_MD5_STEP(DEPOT_MD5_I, a, b, c, d, m[12], 0x655b59c3, 6);
        DEPOT_MD5_STEP(DEPOT_MD5_I, d, a, b, c, m[3], 0x8f0ccc92, 10);
        DEPOT_MD5_STEP(DEPOT_MD5_I, c, d, a, b, m[10], 0xffeff47d, 15);
        DEPOT_MD5_STEP(DEPOT_MD5_I, b, c, d, a, m[1], 0x85845dd1, 21);
        DEPOT_MD5_STEP(DEPOT_MD5_I, a, b, c, d, m[8], 0x6fa87e4f, 6);
        DEPOT_MD5_STEP(DEPOT_MD5_I, d, a, b, c, m[15], 0xfe2ce6e0, 10);
        DEPOT_MD5_STEP(DEPOT_MD5_I, c, d, a, b, m[6], 0xa3014314, 15);
        DEPOT_MD5_STEP(DEPOT_MD5_I, b, c, d, a, m[13], 0x4e0811a1, 21);
        DEPOT_MD5_STEP(DEPOT_MD5_I, a, b, c, d, m[4], 0xf7537e82, 6);
        DEPOT_MD5_STEP(DEPOT_MD5_I, d, a, b, c, m[11], 0xbd3af235, 10);
        DEPOT_MD5_STEP(DEPOT_MD5_I, c, d, a, b, m[2], 0x2ad7d2bb, 15);
        DEPOT_MD5_STEP(DEPOT_MD5_I, b, c, d, a, m[9], 0xeb86d391, 21);

        a += aa; b += bb; c += cc; d += dd;
        p += 64;
    }
    st[0] = a; st[1] = b; st[2] = c; st[3] = d;
}

static void depot_md5_init(depot_md5_ctx *ctx) {
    ctx->st[0] = 0x67452301u;
    ctx->st[1] = 0xefcdab89u;
    ctx->st[2] = 0x98badcfeu;
    ctx->st[3] = 0x10325476u;
    ctx->nbytes = 0;
}

static void depot_md5_update(depot_md5_ctx *ctx, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    size_t have = (size_t)(ctx->nbytes & 63);
    ctx->nbytes += len;
    if (have) {
        size_t need = 64 - have;
        if (len < need) {
            memcpy(ctx->buf + have, p, len);
            return;
        }
        memcpy(ctx->buf + have, p, need);
        depot_md5_blocks(ctx->st, ctx->buf, 1);
        p += need;
        len -= need;
    }
    if (len >= 64) {
        depot_md5_blocks(ctx->st, p, len / 64);
        p += len & ~(size_t)63;
        len &= 63;
    }
    if (len) memcpy(ctx->buf, p, len);
}

static void depot_md5_final(depot_md5_ctx *ctx, unsigned char out[16]) {
    /* Pad with 0x80, zeros to 56 mod 64, then the bit length little-endian. */
    unsigned char pad[72];
    uint64_t bits = ctx->nbytes * 8;
    size_t have = (size_t)(ctx->nbytes & 63);
    size_t padlen = (have < 56) ? 56 - have : 120 - have;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (unsigned char)(bits >> (8 * i));
    uint64_t keep = ctx->nbytes;
    depot_md5_update(ctx, pad, padlen + 8);
    ctx->nbytes = keep;
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (unsigned char)ctx->st[i];
        out[4 * i + 1] = (unsigned char)(ctx->st[i] >> 8);
        out[4 * i + 2] = (unsigned char)(ctx->st[i] >> 16);
        out[4 * i + 3] = (unsigned char)(ctx->st[i] >> 24);
    }
}

#endif /* DEPOT_MD5_H_INCLUDED */
