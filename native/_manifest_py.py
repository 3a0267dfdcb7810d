"""Pure-Python twin of the manifest codec (``_manifest.pyx``).

The manifest format is Depot's on-disk form of an artifact manifest: entries
sorted by path, written and read as a stream so that a manifest of millions of
entries never has to sit in memory or in one gRPC message.

Layout (all integers are unsigned LEB128 varints unless noted)::

    b"DPMF1\\n"                          magic + format version
    u8  digest algorithm code of the artifact digest
    block*                              each: u32le payload_len, u32le count, zlib(payload)
    u32le 0                             end of blocks
    varint count, varint total_size, varint len, ascii artifact digest (hex)

A block payload holds ``count`` entries; paths are front-coded against the
previous path *in the same block* so every block decodes on its own::

    varint shared, varint suffix_len, suffix      path (UTF-8)
    u8 algorithm code
    varint len, digest (ascii)
    varint size
    varint len, ref (UTF-8)
    varint len, version_id (UTF-8)
    varint len, extra (UTF-8 JSON or empty)

Paths are strictly increasing in UTF-8 byte order, which both sorts the
manifest and rules out duplicates.

A block ends after ``block_entries`` entries or once its payload reaches
``BLOCK_PAYLOAD_BYTES``, whichever comes first: 4096 ordinary entries are
~1 MiB, so only entries of huge fields end a block early, and the reader's
``MAX_BLOCK_PAYLOAD`` always holds what the writer makes.
"""

from __future__ import annotations

import hashlib
import inspect
import operator
import re
import struct
import types
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, NamedTuple, Protocol, TypeVar, cast

import xxhash

MAGIC = b"DPMF1\n"
ALGORITHMS = ("md5", "xxh3_128", "etag", "sha256", "none")
_CODE = {name: i for i, name in enumerate(ALGORITHMS)}
DIGEST_PREFIX = b"wandb-artifact-manifest-v1\n"
DEFAULT_BLOCK_ENTRIES = 4096
# The most entries a block may say it holds: front coding lets an entry
# repeat the previous path for a few bytes, so a small block claiming many
# entries would decode into gigabytes of paths. Every entry takes at least
# MIN_ENTRY_BYTES of payload (one byte per length, the code and the size).
MAX_BLOCK_ENTRIES = 65536
MIN_ENTRY_BYTES = 8
# A block whose payload reaches this many bytes ends there (see above).
BLOCK_PAYLOAD_BYTES = 16 * 1024 * 1024
# Sizes are written as varints but read back into 64-bit integers.
_SIZE_LIMIT = 1 << 64
_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")
_T = TypeVar("_T")


class ManifestError(ValueError):
    """The manifest bytes are malformed or the entries break the format's rules."""


# The artifact digest hashes "path:digest\n" lines, as W&B does. Refusing
# control characters (C0, DEL, C1; not just the newline) keeps one entry to
# one line, so one path cannot spell the lines of two files. It does not make
# the input unambiguous, and nothing here can while staying W&B-compatible: a
# path may hold ':' and an unchecksummed reference's digest is its URI, so
# "pp:s3" + "//b/k" and "pp" + "s3://b/k" hash the same line. The digest is
# therefore no identity of a manifest's entries: the metadata service reuses
# a version only when the manifest id (SHA-256 of these bytes, which encode
# every field length-prefixed) is equal too.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_digest_pair(path: str, digest: str) -> None:
    """Raises ManifestError unless ``path:digest\n`` is one line of digest input (see above)."""
    if _FORBIDDEN.search(path):
        raise ManifestError(f"manifest path {path!r} contains a control character")
    if _FORBIDDEN.search(digest):
        raise ManifestError(f"entry digest {digest!r} of {path!r} contains a control character")


# The entry-path rules of depot.core.entry_paths.check_entry_path, applied by
# ManifestWriter(check_paths=True) while entries are written, so a listing of
# millions of keys is validated in the pass that writes it, not by a second
# pass over the stored segment. Same limits, same order, same words; the
# compiled writer checks the UTF-8 bytes and reports the same messages.
MAX_PATH = 4096
MAX_COMPONENT = 255
# Indexed by the compiled writer's problem codes; ``{0:04X}`` is the code point.
PATH_PROBLEMS = (
    "",
    "is not valid UTF-8",
    "is empty",
    "contains NUL",
    "contains the control character U+{0:04X}",
    "is absolute",
    f"is longer than {MAX_PATH} bytes",
    "contains '..'",
    "is not normalized (empty or '.' component)",
    f"has a component longer than {MAX_COMPONENT} bytes",
)


def path_problem(path: str) -> str | None:
    """Why ``path`` is no valid entry path (check_entry_path's words), or None."""
    try:
        b = path.encode()
    except UnicodeEncodeError:
        return PATH_PROBLEMS[1]
    if not path:
        return PATH_PROBLEMS[2]
    if "\0" in path:
        return PATH_PROBLEMS[3]
    if m := _FORBIDDEN.search(path):
        return PATH_PROBLEMS[4].format(ord(m.group()))
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return PATH_PROBLEMS[5]
    if len(b) > MAX_PATH:
        return PATH_PROBLEMS[6]
    parts = b.split(b"/")
    if b".." in parts:
        return PATH_PROBLEMS[7]
    if any(p in (b"", b".") for p in parts):
        return PATH_PROBLEMS[8]
    if any(len(p) > MAX_COMPONENT for p in parts):
        return PATH_PROBLEMS[9]
    return None


class ByteSink(Protocol):
    """Where ``ManifestWriter`` writes: anything with ``write(bytes)`` (a file, a spool)."""

    def write(self, data: bytes, /) -> object: ...


class ListPageLike(Protocol):
    """What ``add_page`` needs of a parsed S3 listing page (``depot.native.ListPage``)."""

    count: int

    def key(self, i: int) -> str: ...
    def etag(self, i: int) -> str: ...
    def size(self, i: int) -> int: ...
    def version_id(self, i: int) -> str: ...


class ManifestEntry(NamedTuple):
    path: str
    algorithm: str
    digest: str
    size: int
    ref: str = ""
    version_id: str = ""
    extra: str = ""


# A dataclass, not a NamedTuple: a tuple field named `count` would shadow tuple.count.
@dataclass(frozen=True, slots=True)
class ManifestSummary:
    count: int
    total_size: int
    digest: str
    digest_algorithm: str


def _new_hasher(algorithm: str) -> hashlib._Hash | xxhash.xxh3_128:
    if algorithm == "md5":
        return hashlib.md5()
    if algorithm == "xxh3_128":
        return xxhash.xxh3_128()
    raise ManifestError(f"artifact digest algorithm must be md5 or xxh3_128, not {algorithm!r}")


class ArtifactDigester:
    """The W&B manifest-v1 artifact digest, fed one (path, digest) pair at a time in path order."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._h = _new_hasher(algorithm)
        self._h.update(DIGEST_PREFIX)

    def update(self, path: str, digest: str) -> None:
        check_digest_pair(path, digest)
        self._h.update(f"{path}:{digest}\n".encode())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def artifact_digest(algorithm: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Digest of sorted (path, digest) pairs; the caller sorts."""
    d = ArtifactDigester(algorithm)
    for path, digest in pairs:
        d.update(path, digest)
    return d.hexdigest()


def _put_varint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ManifestError(f"negative integer {n} cannot be encoded")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_bytes(out: bytearray, b: bytes) -> None:
    _put_varint(out, len(b))
    out += b


class ManifestWriter:
    """Streams sorted entries into the manifest format; ``close()`` returns the summary.

    ``check_paths=True`` refuses (ManifestError) any path that breaks the
    entry-path rules (see ``path_problem``), in ``add`` and ``add_page``.
    """

    def __init__(
        self,
        out: ByteSink,
        digest_algorithm: str,
        block_entries: int = DEFAULT_BLOCK_ENTRIES,
        check_paths: bool = False,
    ) -> None:
        self._out = out
        self._check_paths = check_paths
        self._digester = ArtifactDigester(digest_algorithm)
        if block_entries > MAX_BLOCK_ENTRIES:
            raise ManifestError(f"block_entries is at most {MAX_BLOCK_ENTRIES}, what a reader accepts")
        self._block_entries = block_entries
        self._buf = bytearray()
        self._in_block = 0
        self._prev_in_block = b""
        self._last_path: bytes | None = None
        self._count = 0
        self._total_size = 0
        self._closed = False
        out.write(MAGIC + bytes([_CODE[digest_algorithm]]))

    def add(
        self,
        path: str,
        algorithm: str,
        digest: str,
        size: int,
        ref: str = "",
        version_id: str = "",
        extra: str = "",
    ) -> None:
        if self._closed:
            raise ManifestError("manifest writer is closed")
        code = _CODE.get(algorithm)
        if code is None:
            raise ManifestError(f"unknown entry digest algorithm {algorithm!r}")
        if self._check_paths and (problem := path_problem(path)):
            raise ManifestError(f"entry path {path!r} {problem}")
        p = path.encode()
        if self._last_path is not None and p <= self._last_path:
            if p == self._last_path:
                raise ManifestError(f"duplicate manifest path {path!r}")
            raise ManifestError(f"manifest paths out of order: {path!r} after {self._last_path.decode()!r}")
        size = operator.index(size)
        if not 0 <= size < _SIZE_LIMIT:
            raise ManifestError(f"size {size} out of range for {path!r}")
        try:
            d = digest.encode("ascii")
        except UnicodeEncodeError:
            raise ManifestError(f"non-ASCII digest for {path!r}") from None
        check_digest_pair(path, digest)
        # Encode every field before touching the block, so a rejected entry
        # never leaves half of itself behind.
        r = ref.encode()
        v = version_id.encode()
        x = extra.encode()
        prev = self._prev_in_block
        shared = 0
        limit = min(len(prev), len(p))
        while shared < limit and prev[shared] == p[shared]:
            shared += 1
        buf = self._buf
        _put_varint(buf, shared)
        _put_bytes(buf, p[shared:])
        buf.append(code)
        _put_bytes(buf, d)
        _put_varint(buf, size)
        _put_bytes(buf, r)
        _put_bytes(buf, v)
        _put_bytes(buf, x)
        self._prev_in_block = p
        self._last_path = p
        self._digester.update(path, digest)
        self._count += 1
        self._total_size += size
        self._in_block += 1
        if self._in_block >= self._block_entries or len(buf) >= BLOCK_PAYLOAD_BYTES:
            self._flush_block()

    def add_many(self, entries: Iterable[ManifestEntry]) -> None:
        for e in entries:
            self.add(*e)

    def add_page(
        self,
        page: ListPageLike,
        strip: int,
        path_prefix: str,
        ref_prefix: str,
        bucket_versioned: bool = False,
        algorithm: str = "etag",
    ) -> None:
        """Appends every kept object of a listing page as an ``algorithm`` entry
        (``etag`` for S3 pages; GCS pages carry an ``md5`` digest).

        The entry path is ``path_prefix + key[strip:]`` (``strip`` counts
        characters) and its ref ``ref_prefix + key``. Outside a versioned
        bucket S3 reports the placeholder version id ``"null"``; it is not a
        version anyone can fetch, so it is recorded as "".
        """
        for i in range(page.count):
            key = page.key(i)
            vid = page.version_id(i)
            if not bucket_versioned and vid == "null":
                vid = ""
            self.add(path_prefix + key[strip:], algorithm, page.etag(i), page.size(i), ref_prefix + key, vid)

    @property
    def count(self) -> int:
        """Entries written so far (a listing's progress, read between pages)."""
        return self._count

    @property
    def total_size(self) -> int:
        """The sum of the sizes written so far."""
        return self._total_size

    def _flush_block(self) -> None:
        if not self._in_block:
            return
        payload = zlib.compress(bytes(self._buf), 1)
        self._out.write(_U32x2.pack(len(payload), self._in_block))
        self._out.write(payload)
        self._buf = bytearray()
        self._in_block = 0
        self._prev_in_block = b""

    def close(self) -> ManifestSummary:
        if not self._closed:
            self._flush_block()
            tail = bytearray(_U32.pack(0))
            _put_varint(tail, self._count)
            _put_varint(tail, self._total_size)
            _put_bytes(tail, self._digester.hexdigest().encode("ascii"))
            self._out.write(bytes(tail))
            self._closed = True
        return ManifestSummary(self._count, self._total_size, self._digester.hexdigest(), self._digester.algorithm)


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self, wide: bool = False) -> int:
        """Entry fields are 64-bit; ``wide`` (the footer's total size) is unbounded."""
        n = shift = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ManifestError("truncated manifest: varint runs past the end")
            b = data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                if n >> 64 and not wide:
                    raise ManifestError("malformed manifest: varint too long")
                return n
            shift += 7
            if shift > 63 and not wide:
                raise ManifestError("malformed manifest: varint too long")

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ManifestError("truncated manifest: field runs past the end")
        b = self.data[self.pos : end]
        self.pos = end
        return b


def _check_block_count(expected: int, payload_len: int) -> None:
    if expected > MAX_BLOCK_ENTRIES or expected * MIN_ENTRY_BYTES > payload_len:
        raise ManifestError(f"malformed manifest: a block of {payload_len} bytes cannot hold {expected} entries")


def _decode_block(payload: bytes, expected: int, make: Callable[..., Any] | None = None) -> list[Any]:
    _check_block_count(expected, len(payload))
    cur = _Cursor(payload)
    prev = b""
    out: list[Any] = []
    entry = ManifestEntry if make is None else make
    for _ in range(expected):
        shared = cur.varint()
        if shared > len(prev):
            raise ManifestError("malformed manifest: bad path prefix")
        suffix = cur.varint()
        if shared + suffix > MAX_PATH:
            raise ManifestError(f"malformed manifest: entry path longer than {MAX_PATH} bytes")
        p = prev[:shared] + cur.take(suffix)
        code = cur.take(1)[0]
        if code >= len(ALGORITHMS):
            raise ManifestError("malformed manifest: unknown entry algorithm code")
        digest = cur.take(cur.varint()).decode("ascii")
        size = cur.varint()
        ref = cur.take(cur.varint()).decode()
        vid = cur.take(cur.varint()).decode()
        extra = cur.take(cur.varint()).decode()
        out.append(entry(p.decode(), ALGORITHMS[code], digest, size, ref, vid, extra))
        prev = p
    if cur.pos != len(payload):
        raise ManifestError("malformed manifest: trailing bytes in block")
    return out


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    b = inp.read(n)
    if len(b) != n:
        raise ManifestError("truncated manifest")
    return b


class ManifestReader:
    """Reads a manifest block by block; ``summary`` is set once the footer is read."""

    def __init__(self, inp: BinaryIO) -> None:
        self._in = inp
        head = _read_exact(inp, len(MAGIC) + 1)
        if head[: len(MAGIC)] != MAGIC:
            raise ManifestError("not a Depot manifest (bad magic)")
        if head[-1] >= len(ALGORITHMS):
            raise ManifestError("malformed manifest: unknown digest algorithm code")
        self.digest_algorithm = ALGORITHMS[head[-1]]
        self.summary: ManifestSummary | None = None

    def batches(self) -> Iterator[list[ManifestEntry]]:
        """Yields the entries one block at a time, in path order."""
        count = 0
        size_sum = 0
        while True:
            n = _U32.unpack(_read_exact(self._in, 4))[0]
            if n == 0:
                break
            expected = _U32.unpack(_read_exact(self._in, 4))[0]
            payload = _inflate(_read_exact(self._in, n))
            try:
                out = _decode_block(payload, expected)
            except UnicodeDecodeError:
                raise ManifestError("malformed manifest: text field is not valid UTF-8") from None
            count += expected
            size_sum += sum(e.size for e in out)
            yield out
        rest = self._in.read()
        cur = _Cursor(rest)
        total = cur.varint()
        size = cur.varint(wide=True)
        try:
            digest = cur.take(cur.varint()).decode("ascii")
        except UnicodeDecodeError:
            raise ManifestError("malformed manifest: non-ASCII artifact digest") from None
        if cur.pos != len(rest):
            raise ManifestError("malformed manifest: trailing bytes after footer")
        if total != count:
            raise ManifestError(f"malformed manifest: footer says {total} entries, read {count}")
        if size != size_sum:
            raise ManifestError(f"malformed manifest: footer says {size} bytes, entries sum to {size_sum}")
        self.summary = ManifestSummary(total, size, digest, self.digest_algorithm)

    def __iter__(self) -> Iterator[ManifestEntry]:
        for batch in self.batches():
            yield from batch


# ---------------------------------------------------------------- block index
#
# A stored manifest is read by seeking, not decoding it all: the blocks are
# self-delimiting (u32le payload_len, u32le count) and every block's first
# path is written whole (front coding restarts per block), so one pass over
# the block headers, inflating only the first few bytes of each payload,
# gives the first path of every block. Bisecting those finds the one block
# that can hold a path. The format is unchanged: old manifests index too.

# Compressed bytes inflated per step while looking for a block's first path:
# a typical path is one step; a 4 KiB path a few.
_SCAN_STEP = 512
# The most a block may inflate to in decode_block, which is fed bytes from
# the network: twice the most the writer makes (BLOCK_PAYLOAD_BYTES plus one
# entry) and still bounded, so a zlib bomb is an error, not a runaway
# allocation.
MAX_BLOCK_PAYLOAD = 32 * 1024 * 1024


# A dataclass, not a NamedTuple, for the reason ManifestSummary is one.
@dataclass(frozen=True, slots=True)
class Block:
    """One stored block: where it starts, its length (header included), entries, first path."""

    offset: int
    size: int
    count: int
    first_path: str


def _first_path(inp: BinaryIO, n: int) -> str:
    """The first entry's path at the start of a block payload of ``n`` compressed bytes."""
    d = zlib.decompressobj()
    out = b""
    left = n

    def inflate_to(size: int) -> None:
        nonlocal out, left
        while len(out) < size and left and not d.eof:
            data = _read_exact(inp, min(left, _SCAN_STEP))
            left -= len(data)
            try:
                out += d.decompress(data)
            except zlib.error as e:
                raise ManifestError(f"corrupt manifest block: {e}") from None

    inflate_to(20)  # two varints of at most 10 bytes each
    cur = _Cursor(out)
    if cur.varint() != 0:
        raise ManifestError("malformed manifest: a block's first path is front-coded")
    k = cur.varint()
    inflate_to(cur.pos + k)
    cur.data = out
    try:
        return cur.take(k).decode()
    except UnicodeDecodeError:
        raise ManifestError("malformed manifest: text field is not valid UTF-8") from None


def scan_blocks(inp: BinaryIO) -> list[Block]:
    """The block index of a seekable manifest file, reading only block headers and first paths.

    The stream is left at the end-of-blocks marker's end (where the footer starts).
    """
    inp.seek(0)
    head = _read_exact(inp, len(MAGIC) + 1)
    if head[: len(MAGIC)] != MAGIC:
        raise ManifestError("not a Depot manifest (bad magic)")
    blocks: list[Block] = []
    offset = len(head)
    prev = ""
    while True:
        n = _U32.unpack(_read_exact(inp, 4))[0]
        if n == 0:
            return blocks
        count = _U32.unpack(_read_exact(inp, 4))[0]
        if count == 0:
            raise ManifestError("malformed manifest: empty block")
        first = _first_path(inp, n)
        # str order is code point order, which is UTF-8 byte order: the manifest's order.
        if blocks and first <= prev:
            raise ManifestError("malformed manifest: blocks out of path order")
        blocks.append(Block(offset, 8 + n, count, first))
        prev = first
        offset += 8 + n
        inp.seek(offset)


def read_block(inp: BinaryIO, offset: int) -> bytes:
    """The stored bytes of the block at ``offset`` (header included), as ``decode_block`` takes them."""
    inp.seek(offset)
    header = _read_exact(inp, 8)
    n = _U32.unpack_from(header)[0]
    if n == 0:
        raise ManifestError("malformed manifest: no block at this offset")
    return header + _read_exact(inp, n)


# The fields decode_block fills, in its order (ManifestEntry's).
ENTRY_FIELDS = ManifestEntry._fields


class EntryMaker(Generic[_T]):
    """Builds a caller's entry objects, so ``decode_block`` can hand out the caller's
    class directly instead of ``ManifestEntry`` tuples to be converted one by one.

    ``cls`` must be a class with writable ``__slots__`` named as
    ``ENTRY_FIELDS`` (and as each key of ``fixed``) whose ``__new__`` is
    ``object.__new__``. An entry is made without calling ``__init__``: a bare
    instance, its decoded fields set, then each ``fixed`` value (the same
    object for every entry). The compiled maker writes the slots directly,
    which is why only plain slots are accepted.
    """

    def __init__(self, cls: type[_T], **fixed: object) -> None:
        if not isinstance(cls, type) or cls.__new__ is not object.__new__:
            raise TypeError("EntryMaker needs a class whose __new__ is object.__new__")
        for name in (*ENTRY_FIELDS, *fixed):
            _slot(cls, name)
        self._cls = cls
        self._fixed = tuple(fixed.items())

    def __call__(
        self, path: str, algorithm: str, digest: str, size: int, ref: str = "", version_id: str = "", extra: str = ""
    ) -> _T:
        e: Any = object.__new__(self._cls)
        e.path, e.algorithm, e.digest, e.size = path, algorithm, digest, size
        e.ref, e.version_id, e.extra = ref, version_id, extra
        for name, value in self._fixed:
            setattr(e, name, value)
        return cast(_T, e)


def _slot(cls: type, name: str) -> types.MemberDescriptorType:
    """The writable slot ``name`` of ``cls``, or a TypeError naming it."""
    d = inspect.getattr_static(cls, name, None)
    if type(d) is not types.MemberDescriptorType or not issubclass(cls, d.__objclass__):
        raise TypeError(f"EntryMaker: {cls.__qualname__}.{name} is not a slot")
    return d


def decode_block(raw: bytes, make: EntryMaker[_T] | None = None) -> list[Any]:
    """The entries of one stored block (``u32le payload_len, u32le count, zlib payload``).

    Checks everything: the lengths, the zlib stream (complete, nothing after
    it, at most ``MAX_BLOCK_PAYLOAD`` inflated), every field and the entry
    count. A client feeds it bytes from the network. The entries are
    ``ManifestEntry`` tuples, or what ``make`` builds.
    """
    return decode_payload(*inflate_block(raw), make)


def inflate_block(raw: bytes) -> tuple[bytes, int]:
    """One stored block's inflated payload and entry count, with ``decode_block``'s checks
    of the header and the zlib stream: the half of a decode that needs no entry objects."""
    if len(raw) < 8:
        raise ManifestError("truncated manifest block: no header")
    n, count = _U32x2.unpack_from(raw)
    if n != len(raw) - 8:
        raise ManifestError(f"malformed manifest block: header says {n} payload bytes, got {len(raw) - 8}")
    return _inflate(memoryview(raw)[8:]), count


def decode_payload(payload: bytes, count: int, make: EntryMaker[_T] | None = None) -> list[Any]:
    """The ``count`` entries of a payload from ``inflate_block``, checked as ``decode_block`` checks them."""
    if not 0 <= count <= MAX_BLOCK_ENTRIES:
        raise ManifestError(f"malformed manifest: a block of {len(payload)} bytes cannot hold {count} entries")
    try:
        return _decode_block(payload, count, make)
    except UnicodeDecodeError:
        raise ManifestError("malformed manifest: text field is not valid UTF-8") from None


def _inflate(data: bytes | memoryview) -> bytes:
    """A block's zlib stream inflated: complete, nothing after it, at most ``MAX_BLOCK_PAYLOAD`` bytes
    (a zlib bomb is an error, not a runaway allocation, whether it came from disk or the network)."""
    d = zlib.decompressobj()
    try:
        payload = d.decompress(data, MAX_BLOCK_PAYLOAD)
    except zlib.error as e:
        raise ManifestError(f"corrupt manifest block: {e}") from None
    if d.unconsumed_tail:
        raise ManifestError(f"malformed manifest block: inflates past {MAX_BLOCK_PAYLOAD} bytes")
    if not d.eof or d.unused_data:
        raise ManifestError("corrupt manifest block: the zlib stream is incomplete or followed by junk")
    return payload
