"""The codec's size bounds: the writer ends a block at a byte limit, so every
block it makes is one the reader accepts, and the reader refuses a block that
decodes to far more than it holds (front coding makes that cheap to craft)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from support.native_impls import Impl

from depot.native._manifest_py import (
    BLOCK_PAYLOAD_BYTES,
    DEFAULT_BLOCK_ENTRIES,
    MAGIC,
    MAX_BLOCK_ENTRIES,
    MAX_BLOCK_PAYLOAD,
    ManifestEntry,
    ManifestError,
)

MIB = 1024 * 1024


def _write(impl: Impl, entries: list[ManifestEntry]) -> bytes:
    out = io.BytesIO()
    w = impl.manifest.ManifestWriter(out, "md5")
    w.add_many(entries)
    w.close()
    return out.getvalue()


def test_a_block_ends_at_the_byte_limit(impl: Impl) -> None:
    # 1 MiB of extra per entry: 4096 of them would be a 4 GiB block.
    extra = '{"k":"' + "x" * (MIB - 8) + '"}'
    entries = [ManifestEntry(f"f{i:03d}", "md5", "d", 1, extra=extra) for i in range(40)]
    data = _write(impl, entries)
    f = io.BytesIO(data)
    blocks = impl.manifest.scan_blocks(f)
    per_block = BLOCK_PAYLOAD_BYTES // MIB
    assert [b.count for b in blocks] == [per_block, per_block, 40 - 2 * per_block]
    decoded = [e for b in blocks for e in impl.manifest.decode_block(impl.manifest.read_block(f, b.offset))]
    assert decoded == entries
    assert [e for batch in impl.manifest.ManifestReader(io.BytesIO(data)).batches() for e in batch] == entries
    assert BLOCK_PAYLOAD_BYTES + MIB < MAX_BLOCK_PAYLOAD


def test_ordinary_blocks_still_end_by_count(c_impl: Impl, py_impl: Impl) -> None:
    # Entries of 3 KiB (long paths and refs) fill 12 MiB per 4096: blocks end
    # by count as before, so existing manifest ids do not change.
    entries = [
        ManifestEntry(f"{'d' * 200}/{i:06d}/{'p' * 1000}", "etag", f"{i:032x}", i, f"s3://b/{'k' * 1800}{i}", "v")
        for i in range(2 * DEFAULT_BLOCK_ENTRIES + 5)
    ]
    data = _write(py_impl, entries)
    assert _write(c_impl, entries) == data
    assert [b.count for b in py_impl.manifest.scan_blocks(io.BytesIO(data))] == [4096, 4096, 5]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _entry(shared: int, suffix: bytes) -> bytes:
    # shared, suffix, md5 code, empty digest, size 0, empty ref/version/extra
    return _varint(shared) + _varint(len(suffix)) + suffix + b"\x00\x00\x00\x00\x00\x00"


def _block(payload: bytes, count: int) -> bytes:
    z = zlib.compress(payload, 9)
    return struct.pack("<II", len(z), count) + z


def test_a_front_coded_path_past_the_path_limit_is_refused(impl: Impl) -> None:
    # Each entry reuses the whole previous path and adds to it: a block of a
    # few KiB on the wire that would decode into ever longer paths.
    payload = _entry(0, b"a" * 4000) + b"".join(_entry(4000 + 90 * i, b"b" * 90) for i in range(50))
    raw = _block(payload, 51)
    assert len(raw) < 2000
    with pytest.raises(ManifestError, match="entry path longer than 4096 bytes"):
        impl.manifest.decode_block(raw)
    # Up to the limit it decodes.
    ok = _block(_entry(0, b"a" * 4000) + _entry(4000, b"b" * 96), 2)
    assert [len(e.path) for e in impl.manifest.decode_block(ok)] == [4000, 4096]


def test_a_block_claiming_more_entries_than_it_can_hold_is_refused(impl: Impl) -> None:
    # 65,537 copies of one 4 KiB path would be 256 MiB of strings from ~600 KiB of payload.
    payload = _entry(0, b"p" * 4096) + _entry(4096, b"") * MAX_BLOCK_ENTRIES
    with pytest.raises(ManifestError, match="cannot hold 65537 entries"):
        impl.manifest.decode_block(_block(payload, MAX_BLOCK_ENTRIES + 1))
    with pytest.raises(ManifestError, match="cannot hold 9 entries"):
        impl.manifest.decode_block(_block(_entry(0, b"x"), 9))
    # A manifest whose blocks say so is refused by the streaming reader too.
    head = MAGIC + b"\x00"
    with pytest.raises(ManifestError, match="cannot hold"):
        list(impl.manifest.ManifestReader(io.BytesIO(head + _block(_entry(0, b"x"), 9) + b"\x00" * 8)).batches())


def test_the_writer_makes_no_block_a_reader_refuses(impl: Impl) -> None:
    with pytest.raises(ManifestError, match="block_entries is at most 65536"):
        impl.manifest.ManifestWriter(io.BytesIO(), "md5", block_entries=MAX_BLOCK_ENTRIES + 1)
    assert MAX_BLOCK_PAYLOAD <= 32 * MIB
