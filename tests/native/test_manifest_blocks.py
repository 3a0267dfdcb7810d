"""The block index of a stored manifest: scan, seek and decode, on both implementations."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.native._manifest_py import MAGIC, Block, ManifestEntry, ManifestError


def _entries(n: int) -> list[ManifestEntry]:
    return [
        ManifestEntry(f"dir{i // 700}/ü-{i:06d}.bin", "etag", f"{i:032x}", i, f"s3://b/k{i}", "v" * (i % 3))
        for i in range(n)
    ]


def _write(impl: Impl, entries: list[ManifestEntry], block: int) -> bytes:
    out = io.BytesIO()
    w = impl.manifest.ManifestWriter(out, "md5", block_entries=block)
    w.add_many(entries)
    w.close()
    return out.getvalue()


def test_scan_finds_every_block_and_its_first_path(impl: Impl) -> None:
    entries = _entries(2500)
    data = _write(impl, entries, block=1000)
    f = io.BytesIO(data)
    blocks = impl.manifest.scan_blocks(f)
    assert [(b.count, b.first_path) for b in blocks] == [
        (1000, entries[0].path),
        (1000, entries[1000].path),
        (500, entries[2000].path),
    ]
    assert blocks[0].offset == len(MAGIC) + 1
    assert all(a.offset + a.size == b.offset for a, b in zip(blocks, blocks[1:]))
    # The stream ends at the end-of-blocks marker: the footer follows.
    assert f.tell() == blocks[-1].offset + blocks[-1].size + 4
    decoded = [impl.manifest.decode_block(impl.manifest.read_block(f, b.offset)) for b in blocks]
    assert [e for batch in decoded for e in batch] == entries
    assert isinstance(blocks[0], Block)


def test_scan_of_an_empty_manifest(impl: Impl) -> None:
    assert impl.manifest.scan_blocks(io.BytesIO(_write(impl, [], block=10))) == []


def test_a_long_first_path_is_read_whole(impl: Impl) -> None:
    # Longer than one inflate step of the scan.
    entries = [ManifestEntry("a" * 3000 + f"/{i}", "md5", "x", 1) for i in range(5)]
    data = _write(impl, entries, block=2)
    assert [b.first_path for b in impl.manifest.scan_blocks(io.BytesIO(data))] == [
        entries[0].path,
        entries[2].path,
        entries[4].path,
    ]


def test_implementations_agree(c_impl: Impl, py_impl: Impl) -> None:
    data = _write(py_impl, _entries(3000), block=512)
    assert c_impl.manifest.scan_blocks(io.BytesIO(data)) == py_impl.manifest.scan_blocks(io.BytesIO(data))
    f = io.BytesIO(data)
    for b in py_impl.manifest.scan_blocks(f):
        raw = py_impl.manifest.read_block(f, b.offset)
        assert c_impl.manifest.decode_block(raw) == py_impl.manifest.decode_block(raw)


@settings(max_examples=40, deadline=None)
@given(
    paths=st.sets(
        st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=("Cc",)), min_size=1, max_size=30
        ),
        max_size=60,
    ),
    block=st.integers(1, 7),
)
def test_decoders_agree_on_any_manifest(paths: set[str], block: int) -> None:
    entries = [ManifestEntry(p, "md5", "d", len(p)) for p in sorted(paths, key=str.encode)]
    data = _write(IMPLS[0], entries, block)
    for impl in IMPLS:
        f = io.BytesIO(data)
        blocks = impl.manifest.scan_blocks(f)
        assert [b.first_path for b in blocks] == [e.path for e in entries[::block]]
        got = [e for b in blocks for e in impl.manifest.decode_block(impl.manifest.read_block(f, b.offset))]
        assert got == entries


def _raw(payload: bytes, count: int) -> bytes:
    z = zlib.compress(payload, 1)
    return struct.pack("<II", len(z), count) + z


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:5], "no header"),
        (lambda raw: raw[:-1], "header says"),
        (lambda raw: raw + b"x", "header says"),
        (lambda raw: raw[:8] + b"\x00" * (len(raw) - 8), "corrupt manifest block"),
        (lambda raw: struct.pack("<II", len(raw) - 8, 3) + raw[8:], "truncated"),
        (lambda raw: struct.pack("<II", len(raw) - 8, 1) + raw[8:], "trailing bytes"),
    ],
    ids=["short-header", "short-payload", "long-payload", "not-zlib", "count-too-high", "count-too-low"],
)
def test_decode_block_refuses_junk(impl: Impl, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    f = io.BytesIO(_write(impl, _entries(2), block=10))
    raw = impl.manifest.read_block(f, impl.manifest.scan_blocks(f)[0].offset)
    assert len(impl.manifest.decode_block(raw)) == 2
    with pytest.raises(ManifestError, match=message):
        impl.manifest.decode_block(mutate(raw))


def test_decode_block_refuses_junk_after_the_zlib_stream(impl: Impl) -> None:
    z = zlib.compress(b"\x00\x01a\x00\x01d\x01\x00\x00\x00", 1) + b"junk"
    with pytest.raises(ManifestError, match="followed by junk"):
        impl.manifest.decode_block(struct.pack("<II", len(z), 1) + z)


def test_decode_block_refuses_bad_fields(impl: Impl) -> None:
    with pytest.raises(ManifestError, match="UTF-8"):
        impl.manifest.decode_block(_raw(b"\x00\x01\xff\x00\x01d\x01\x00\x00\x00", 1))
    with pytest.raises(ManifestError, match="algorithm code"):
        impl.manifest.decode_block(_raw(b"\x00\x01a\x09\x01d\x01\x00\x00\x00", 1))
    with pytest.raises(ManifestError, match="bad path prefix"):
        impl.manifest.decode_block(_raw(b"\x03\x01a\x00\x01d\x01\x00\x00\x00", 1))


def test_decode_block_bounds_what_a_block_inflates_to(impl: Impl, monkeypatch: pytest.MonkeyPatch) -> None:
    # A zlib bomb stops at the bound (lowered here to keep the test small).
    monkeypatch.setattr(impl.manifest, "MAX_BLOCK_PAYLOAD", 1000)
    with pytest.raises(ManifestError, match="inflates past"):
        impl.manifest.decode_block(_raw(b"\x00" * 5000, 1))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda data: data[:20], "truncated"),
        (lambda data: b"NOPE!!" + data[6:], "bad magic"),
    ],
    ids=["truncated", "magic"],
)
def test_scan_refuses_junk(impl: Impl, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _write(impl, _entries(50), block=10)
    with pytest.raises(ManifestError, match=message):
        impl.manifest.scan_blocks(io.BytesIO(mutate(data)))


def test_scan_refuses_a_front_coded_first_path(impl: Impl) -> None:
    data = MAGIC + b"\x00" + _raw(b"\x01\x01a\x00\x01d\x01\x00\x00\x00", 1) + struct.pack("<I", 0)
    with pytest.raises(ManifestError, match="front-coded"):
        impl.manifest.scan_blocks(io.BytesIO(data))


def test_read_block_at_the_end_marker_is_an_error(impl: Impl) -> None:
    f = io.BytesIO(_write(impl, _entries(3), block=10))
    b = impl.manifest.scan_blocks(f)[-1]
    with pytest.raises(ManifestError, match="no block"):
        impl.manifest.read_block(f, b.offset + b.size)


def test_reading_a_whole_manifest_bounds_what_a_block_inflates_to(impl: Impl, monkeypatch: pytest.MonkeyPatch) -> None:
    # ManifestReader.batches (the server's full read) has decode_block's bound: a stored zlib bomb
    # is an error at the bound, not an allocation of whatever the block claims.
    head = MAGIC + b"\x00"
    bomb = head + _raw(b"\x00" * 5000, 1) + struct.pack("<I", 0)
    monkeypatch.setattr(impl.manifest, "MAX_BLOCK_PAYLOAD", 1000)
    with pytest.raises(ManifestError, match="inflates past 1000 bytes"):
        list(impl.manifest.ManifestReader(io.BytesIO(bomb)).batches())
    # A truncated zlib stream is named as such, not decoded from what inflated.
    z = zlib.compress(b"\x00\x01a\x00\x01d\x01\x00\x00\x00", 1)[:-3]
    cut = head + struct.pack("<II", len(z), 1) + z + struct.pack("<I", 0)
    with pytest.raises(ManifestError, match="incomplete"):
        list(impl.manifest.ManifestReader(io.BytesIO(cut)).batches())


def test_inflate_then_decode_is_decode_block(impl: Impl) -> None:
    f = io.BytesIO(_write(impl, _entries(2500), block=1000))
    for b in impl.manifest.scan_blocks(f):
        raw = impl.manifest.read_block(f, b.offset)
        payload, count = impl.manifest.inflate_block(raw)
        assert count == b.count
        assert impl.manifest.decode_payload(payload, count) == impl.manifest.decode_block(raw)
    with pytest.raises(ManifestError, match="cannot hold 65537 entries"):
        impl.manifest.decode_payload(payload, 65537)
    with pytest.raises(ManifestError, match="cannot hold -1 entries"):
        impl.manifest.decode_payload(payload, -1)
    with pytest.raises(ManifestError, match="header says"):
        impl.manifest.inflate_block(raw[:-1])
