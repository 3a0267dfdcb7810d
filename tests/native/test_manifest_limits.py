"""The codec's size bounds: the writer ends a block at a byte limit, so every
block it makes is one the reader accepts, and the reader refuses a block that
decodes to far more than it holds (front coding makes that cheap to craft)."""

from __future__ import annotations

import io

from support.native_impls import Impl

from depot.native._manifest_py import (
    BLOCK_PAYLOAD_BYTES,
    DEFAULT_BLOCK_ENTRIES,
    MAX_BLOCK_PAYLOAD,
    ManifestEntry,
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
