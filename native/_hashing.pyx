# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled file hasher; the twin is ``_hashing_py.py`` (same API, same digests)."""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc

cdef extern from "depot_hash.h" nogil:
    int DEPOT_ALG_XXH3_128
    int DEPOT_ALG_MD5
    void depot_hash_mem(int algs, const void *data, size_t length, unsigned char *out)
    void depot_hash_many(const char *const *paths, size_t n, int algs, unsigned char *out,
                         int *err, int threads)

HASH_ALGORITHMS = ("xxh3_128", "md5")

# Below this many bytes, dropping and retaking the GIL costs more than it frees.
cdef enum:
    _NOGIL_MIN = 64 * 1024


cdef tuple _check(object algorithms, int *algs):
    cdef tuple t = tuple(algorithms)
    if not t:
        raise ValueError("at least one hash algorithm is required")
    algs[0] = 0
    for a in t:
        if a == "xxh3_128":
            algs[0] |= DEPOT_ALG_XXH3_128
        elif a == "md5":
            algs[0] |= DEPOT_ALG_MD5
        else:
            raise ValueError(f"unknown hash algorithm {a!r}; expected one of {HASH_ALGORITHMS}")
    return t


cdef tuple _pick(tuple names, const unsigned char *out):
    # out holds xxh3 at offset 0 and md5 at offset 16.
    return tuple([PyBytes_FromStringAndSize(<const char *>out + (0 if name == "xxh3_128" else 16), 16)
                  for name in names])


def hash_bytes(data, algorithms=("xxh3_128",)):
    """Raw digests of ``data`` (any contiguous buffer), one per algorithm, in the order asked."""
    cdef int algs
    cdef tuple names = _check(algorithms, &algs)
    cdef const unsigned char[::1] view = memoryview(data).cast("B")
    cdef unsigned char out[32]
    cdef size_t n = view.shape[0]
    cdef const unsigned char *p = &view[0] if n else <const unsigned char *>b""
    if n >= _NOGIL_MIN:
        with nogil:
            depot_hash_mem(algs, p, n, out)
    else:
        depot_hash_mem(algs, p, n, out)
    return _pick(names, out)


def hash_file(path, algorithms=("xxh3_128",)):
    """Raw digests of the file at ``path``; OSError (with the path) if it cannot be read."""
    return hash_files([path], algorithms, 1)[0]


def hash_files(paths, algorithms=("xxh3_128",), int threads=0):
    """``hash_file`` over many paths on ``threads`` native threads (0 = one per CPU).

    The GIL is released for the whole batch. Raises the OSError of the first
    unreadable path, in list order.
    """
    cdef int algs
    cdef tuple names = _check(algorithms, &algs)
    if threads < 0:
        raise ValueError("threads must be >= 0")
    cdef list strs = [os.fspath(p) for p in paths]
    cdef list encoded = [os.fsencode(p) for p in strs]
    cdef size_t n = len(encoded), i, off
    if n == 0:
        return []
    cdef int nthreads = threads or (os.cpu_count() or 1)
    cdef const char **cpaths = <const char **>malloc(n * sizeof(char *))
    cdef unsigned char *out = <unsigned char *>malloc(n * 32)
    cdef int *err = <int *>malloc(n * sizeof(int))
    try:
        if cpaths == NULL or out == NULL or err == NULL:
            raise MemoryError()
        for i in range(n):
            b = encoded[i]
            if b"\0" in b:
                raise ValueError("embedded null byte in path")
            cpaths[i] = PyBytes_AS_STRING(b)
        with nogil:
            depot_hash_many(cpaths, n, algs, out, err, nthreads)
        for i in range(n):
            if err[i]:
                raise OSError(err[i], os.strerror(err[i]), strs[i])
        if len(names) == 1:
            off = 0 if names[0] == "xxh3_128" else 16
            return [(PyBytes_FromStringAndSize(<const char *>out + 32 * i + off, 16),)
                    for i in range(n)]
        return [_pick(names, out + 32 * i) for i in range(n)]
    finally:
        free(cpaths)
        free(out)
        free(err)
