"""``Gunzip``, the streaming decoder behind gzip-encoded gs:// downloads, and the bound it keeps on the stored bytes."""

from __future__ import annotations

import gzip
import io
import os
import threading

import pytest

import depot
from depot._copying import CHUNK, Bounded, Gunzip, gunzipping


class _Pieces(io.BytesIO):
    """A file that remembers the size of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, data: object, /) -> int:
        assert isinstance(data, bytes | memoryview)
        self.sizes.append(len(data))
        return super().write(data)


def _decode(stored: bytes, piece: int) -> _Pieces:
    out = _Pieces()
    gz = Gunzip(out, "x")
    for i in range(0, len(stored), piece):
        assert gz.write(memoryview(stored)[i : i + piece]) == len(stored[i : i + piece])
    gz.finish()
    return out


@pytest.mark.parametrize("piece", [1, 7, 4096, CHUNK, 1 << 30])
def test_decodes_members_and_padding_like_gunzip(piece: int) -> None:
    a, b = os.urandom(3000), b"z" * 100_000
    stored = gzip.compress(a) + b"\0\0\0" + gzip.compress(b) + gzip.compress(b"")
    if piece == 1:
        stored = gzip.compress(a) + gzip.compress(b"tail")  # byte by byte: keep it small
    out = _decode(stored, piece)
    assert out.getvalue() == gzip.decompress(stored)


def test_high_ratio_streams_in_bounded_pieces() -> None:
    text = b"\0" * (9 * CHUNK + 123)
    stored = gzip.compress(text)
    assert len(stored) < CHUNK // 8
    out = _decode(stored, 1 << 30)  # the whole body in one write
    assert out.getvalue() == text
    assert max(out.sizes) <= CHUNK


def test_empty_body_is_an_empty_file() -> None:
    assert _decode(b"", 1).getvalue() == b""


@pytest.mark.parametrize(
    "stored",
    [
        b"not gzip at all",
        gzip.compress(b"abc" * 1000)[:-3],
        gzip.compress(b"abc")[:5],
        gzip.compress(b"abc") + b"trailing garbage",
        gzip.compress(b"abc" * 100)[:-1] + b"\xff",  # ISIZE wrong
    ],
    ids=["not-gzip", "truncated-trailer", "truncated-header", "trailing-garbage", "bad-length"],
)
def test_corrupt_stream_is_a_digest_error(stored: bytes) -> None:
    with pytest.raises(depot.DigestMismatchError, match="^x: not a valid gzip stream"):
        _decode(stored, 10)


def test_bound_counts_stored_bytes_not_decoded() -> None:
    text = b"a" * (3 * CHUNK)
    stored = gzip.compress(text)
    out = io.BytesIO()
    sink, gz = gunzipping(Bounded(out, len(stored), None, "x"), "x")
    sink.write(stored)
    gz.finish()
    assert out.getvalue() == text
    # One stored byte past the recorded size stops it, however small the decoded output.
    sink, _ = gunzipping(Bounded(io.BytesIO(), len(stored) - 1, None, "x"), "x")
    with pytest.raises(depot.DigestMismatchError, match="more than the"):
        sink.write(stored)
    # And a download's stop still applies to the stored bytes.
    stop = threading.Event()
    stop.set()
    sink, _ = gunzipping(Bounded(io.BytesIO(), None, stop, "x"), "x")
    with pytest.raises(depot.DepotError, match="another file of the download failed"):
        sink.write(stored)


def test_unbounded_sink_decodes_directly() -> None:
    out = io.BytesIO()
    sink, gz = gunzipping(out, "x")
    assert sink is gz
    sink.write(gzip.compress(b"hello"))
    gz.finish()
    assert out.getvalue() == b"hello"
