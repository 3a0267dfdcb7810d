/* File hashing core for _hashing.pyx: runs without the GIL.
 *
 * Each job hashes one file with up to DEPOT_MAX_ALGS digests fed from the same
 * reads. hash_files runs jobs on a small pthread pool that pulls the next file
 * index from an atomic counter, so thousands of small files cost one
 * open/read/close each and no Python at all.
 */
#ifndef DEPOT_HASH_H
#define DEPOT_HASH_H

#define XXH_INLINE_ALL
#include "xxhash/xxhash.h"
#include "depot_md5.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEPOT_ALG_XXH3_128 1
#define DEPOT_ALG_MD5 2
#define DEPOT_DIGEST_MAX 16
/* 1 MiB: big enough that syscalls vanish, small enough to stay in L2. */
#define DEPOT_CHUNK (1u << 20)

typedef struct {
    XXH3_state_t *xxh; /* allocated aligned by xxHash */
    depot_md5_ctx md5;
    unsigned char *buf;
} depot_hasher;

static int depot_hasher_init(depot_hasher *h) {
    h->xxh = XXH3_createState();
    h->buf = (unsigned char *)malloc(DEPOT_CHUNK);
    if (!h->xxh || !h->buf) {
        if (h->xxh) XXH3_freeState(h->xxh);
        free(h->buf);
        h->xxh = NULL;
        h->buf = NULL;
        return ENOMEM;
    }
    return 0;
}

static void depot_hasher_free(depot_hasher *h) {
    if (h->xxh) XXH3_freeState(h->xxh);
    free(h->buf);
    h->xxh = NULL;
    h->buf = NULL;
}

/* out receives 16 bytes per algorithm bit set in `algs`: xxh3 at 0, md5 at 16. */
static void depot_emit(depot_hasher *h, int algs, unsigned char *out) {
    if (algs & DEPOT_ALG_XXH3_128) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
        memcpy(out, c.digest, 16);
    }
    if (algs & DEPOT_ALG_MD5) depot_md5_final(&h->md5, out + 16);
}

static void depot_hash_mem(int algs, const void *data, size_t len, unsigned char *out) {
    if (algs & DEPOT_ALG_XXH3_128) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
        memcpy(out, c.digest, 16);
    }
    if (algs & DEPOT_ALG_MD5) {
        depot_md5_ctx m;
        depot_md5_init(&m);
        depot_md5_update(&m, data, len);
        depot_md5_final(&m, out + 16);
    }
}

/* Returns 0 or an errno value. */
static inline int depot_hash_path(depot_hasher *h, const char *path, int algs, unsigned char *out) {
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    ssize_t n;
    /* The first read usually holds the whole file: hash it in one shot,
       which skips the streaming state's setup for small files. */
    size_t have = 0;
    for (;;) {
        n = read(fd, h->buf + have, DEPOT_CHUNK - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return e;
        }
        if (n == 0) break;
        have += (size_t)n;
        if (have == DEPOT_CHUNK) break;
    }
    if (have < DEPOT_CHUNK) {
        close(fd);
        depot_hash_mem(algs, h->buf, have, out);
        return 0;
    }
    if (algs & DEPOT_ALG_XXH3_128) XXH3_128bits_reset(h->xxh);
    if (algs & DEPOT_ALG_MD5) depot_md5_init(&h->md5);
    for (;;) {
        if (algs & DEPOT_ALG_XXH3_128) XXH3_128bits_update(h->xxh, h->buf, have);
        if (algs & DEPOT_ALG_MD5) depot_md5_update(&h->md5, h->buf, have);
        do {
            n = read(fd, h->buf, DEPOT_CHUNK);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            int e = errno;
            close(fd);
            return e;
        }
        if (n == 0) break;
        have = (size_t)n;
    }
    close(fd);
    depot_emit(h, algs, out);
    return 0;
}

typedef struct {
    const char *const *paths;
    size_t n;
    int algs;
    unsigned char *out; /* 32 bytes per path */
    int *err;           /* errno per path */
    size_t next;        /* next path index, taken atomically */
} depot_pool_job;

static void *depot_pool_worker(void *arg) {
    depot_pool_job *job = (depot_pool_job *)arg;
    depot_hasher h;
    int e = depot_hasher_init(&h);
    for (;;) {
        size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n) break;
        job->err[i] = e ? e : depot_hash_path(&h, job->paths[i], job->algs, job->out + 32 * i);
    }
    depot_hasher_free(&h);
    return NULL;
}

/* Hashes all paths on `threads` threads (the caller's thread is one of them). */
static inline void depot_hash_many(const char *const *paths, size_t n, int algs, unsigned char *out,
                                   int *err, int threads) {
    depot_pool_job job = {paths, n, algs, out, err, 0};
    if (threads < 1) threads = 1;
    if ((size_t)threads > n) threads = (int)(n ? n : 1);
    pthread_t *tids = NULL;
    int started = 0;
    if (threads > 1) {
        tids = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)(threads - 1));
        if (tids) {
            for (int t = 0; t < threads - 1; t++) {
                if (pthread_create(&tids[started], NULL, depot_pool_worker, &job) != 0) break;
                started++;
            }
        }
    }
    depot_pool_worker(&job);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    free(tids);
}

#endif /* DEPOT_HASH_H */
