"""Which blocks a filtered read touches, and how the SDK trims them (unit: no I/O, no server).

Checked against the obvious answer (filter every entry) over many small
manifests, so seeking never drops an entry a full scan would keep.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depot._manifest_read import _trim
from depot.native import ManifestEntry, ManifestWriter, decode_block, read_block, scan_blocks
from depot.services.common.errors import InvalidArgument
from depot.services.manifest.reading import BlockIndex, ReadFilter, read_filter

_SEGMENT = st.sampled_from(["a", "b", "data", "data2", "data.csv", "data-x", "x", "ü"])
_PATHS = st.lists(st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join), max_size=40, unique=True)


def _index(paths: list[str], block: int) -> tuple[io.BytesIO, BlockIndex]:
    out = io.BytesIO()
    w = ManifestWriter(out, "md5", block_entries=block)
    for p in sorted(paths):
        w.add(p, "md5", "d", 1)
    w.close()
    f = io.BytesIO(out.getvalue())
    return f, BlockIndex(scan_blocks(f))


@settings(max_examples=150, deadline=None)
@given(
    paths=_PATHS,
    block=st.integers(1, 5),
    prefix=_SEGMENT,
    sub=st.booleans(),
    after=st.sampled_from(["", "a", "data", "data/b", "data0", "zz"]),
)
def test_span_and_trim_keep_what_a_full_scan_keeps(
    paths: list[str], block: int, prefix: str, sub: bool, after: str
) -> None:
    if sub:
        prefix = f"{prefix}/b"
    flt = ReadFilter(prefix=prefix, start_after=after)
    f, index = _index(paths, block)
    want = [p for p in sorted(paths) if flt.keeps(p)]
    sent = [e for i in index.span(flt) for e in decode_block(read_block(f, index.blocks[i].offset))]
    # The server's span holds every kept entry; the SDK's trim keeps exactly them.
    assert [e.path for e in sent if flt.keeps(e.path)] == want
    trimmed = [e.path for e in _trim(sent, after, prefix)]
    assert trimmed == want


@settings(max_examples=100, deadline=None)
@given(
    paths=_PATHS,
    block=st.integers(1, 5),
    names=st.lists(st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join), max_size=8),
)
def test_names_are_found_in_their_blocks(paths: list[str], block: int, names: list[str]) -> None:
    f, index = _index(paths, block)
    found = []
    for i, group in index.by_block(tuple(sorted(set(names)))):
        entries = decode_block(read_block(f, index.blocks[i].offset))
        found += [e.path for e in entries if e.path in group]
    assert found == sorted(set(names) & set(paths))


def test_directory_semantics() -> None:
    flt = ReadFilter(prefix="data")
    assert [p for p in ["data", "data/x", "data2/y", "data.csv", "dat", "data-x/y"] if flt.keeps(p)] == [
        "data",
        "data/x",
    ]
    entries = [
        ManifestEntry(p, "md5", "d", 1) for p in ["dat", "data", "data-x", "data.csv", "data/x", "data0", "data2/y"]
    ]
    assert [e.path for e in _trim(entries, "", "data")] == ["data", "data/x"]
    assert [e.path for e in _trim(entries, "data", "data")] == ["data/x"]
    assert _trim(entries, "", "") is entries


def test_read_filter_validation() -> None:
    assert read_filter(["b", "a", "b"], "data/", "x") == ReadFilter(("a", "b"), "data", "x")
    for names, prefix, field in (
        (["a/../b"], "", "names[0]"),
        ([f"n{i}" for i in range(1001)], "", "names"),
        ([], "/", "prefix"),
        ([], "a//", "prefix"),
        ([], "./a", "prefix"),
    ):
        with pytest.raises(InvalidArgument) as e:
            read_filter(names, prefix, "")
        assert e.value.field == field
