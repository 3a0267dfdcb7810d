import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.native._manifest_py import ManifestEntry, ManifestError


def write(impl: Impl, entries, alg: str = "md5", block: int = 4096) -> tuple[bytes, object]:
    out = io.BytesIO()
    w = impl.manifest.ManifestWriter(out, alg, block_entries=block)
    w.add_many(entries)
    summary = w.close()
    return out.getvalue(), summary


def test_empty_manifest_digest(impl: Impl) -> None:
    _, s = write(impl, [])
    assert s.digest == "64e7c61456b10382e2f3b571ac24b659" and s.count == 0
    assert impl.manifest.artifact_digest("md5", []) == "64e7c61456b10382e2f3b571ac24b659"


def test_round_trip(impl: Impl) -> None:
    entries = [
        ManifestEntry(
            f"d/ü{i:05d}",
            "xxh3_128" if i % 2 else "md5",
            f"{i:032x}",
            i * 1000,
            f"s3://b/{i}",
            "v" * (i % 3),
            "{}" if i % 5 == 0 else "",
        )
        for i in range(2500)
    ]
    data, s = write(impl, entries, "xxh3_128", block=1000)
    r = impl.manifest.ManifestReader(io.BytesIO(data))
    batches = list(r.batches())
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [e for b in batches for e in b] == entries
    assert r.summary == s
    assert s.digest == impl.manifest.artifact_digest("xxh3_128", [(e.path, e.digest) for e in entries])


def test_writer_rejects(impl: Impl) -> None:
    w = impl.manifest.ManifestWriter(io.BytesIO(), "md5")
    w.add("b", "md5", "x", 1)
    with pytest.raises(ManifestError, match="duplicate"):
        w.add("b", "md5", "x", 1)
    with pytest.raises(ManifestError, match="out of order"):
        w.add("a", "md5", "x", 1)
    with pytest.raises(ManifestError, match="unknown entry digest"):
        w.add("c", "crc", "x", 1)
    with pytest.raises(ManifestError, match="out of range"):
        w.add("c", "md5", "x", -1)
    with pytest.raises(ManifestError, match="non-ASCII"):
        w.add("c", "md5", "é", 1)
    w.add("c", "md5", "x", 1)  # nothing half-written by the rejected calls
    w.close()
    with pytest.raises(ManifestError, match="closed"):
        w.add("d", "md5", "x", 1)
    with pytest.raises(ManifestError):
        impl.manifest.ManifestWriter(io.BytesIO(), "sha1")


def test_reader_rejects_corruption(impl: Impl) -> None:
    data, _ = write(impl, [ManifestEntry(f"p{i:03d}", "md5", "d", i) for i in range(50)])
    for cut in range(len(data)):
        with pytest.raises(ManifestError):
            list(impl.manifest.ManifestReader(io.BytesIO(data[:cut])))
    with pytest.raises(ManifestError, match="magic"):
        impl.manifest.ManifestReader(io.BytesIO(b"XXXXXX\n\x00"))
    bad = bytearray(data)
    bad[20] ^= 0xFF
    with pytest.raises(ManifestError):
        list(impl.manifest.ManifestReader(io.BytesIO(bytes(bad))))
    with pytest.raises(ManifestError, match="trailing"):
        list(impl.manifest.ManifestReader(io.BytesIO(data + b"\x00")))


PAGE = (
    "<ListVersionsResult><Version><Key>data/a€</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>"
    "<ETag>&quot;e1&quot;</ETag><Size>5</Size></Version>"
    "<Version><Key>data/b</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>"
    "<ETag>&quot;e2&quot;</ETag><Size>7</Size></Version></ListVersionsResult>"
).encode()


@pytest.mark.parametrize("versioned", [False, True])
def test_add_page_all_combinations(versioned: bool) -> None:
    results = set()
    for writer in IMPLS:
        for parser in IMPLS:
            out = io.BytesIO()
            w = writer.manifest.ManifestWriter(out, "md5")
            w.add_page(parser.s3page.parse_list_page(PAGE), 5, "x/", "s3://bkt/", bucket_versioned=versioned)
            w.close()
            results.add(out.getvalue())
            entries = list(writer.manifest.ManifestReader(io.BytesIO(out.getvalue())))
            assert entries == [
                ManifestEntry("x/a€", "etag", "e1", 5, "s3://bkt/data/a€", "null" if versioned else "", ""),
                ManifestEntry("x/b", "etag", "e2", 7, "s3://bkt/data/b", "v2", ""),
            ]
    assert len(results) == 1


# No control characters (Cc): the digest refuses them (test_digest_input.py).
_path = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
_entries = st.lists(
    st.tuples(
        _path,
        st.sampled_from(["md5", "xxh3_128", "etag", "sha256", "none"]),
        st.text(st.characters(max_codepoint=127, exclude_categories=("Cc",)), max_size=40),
        st.integers(0, 2**64 - 1),
        st.text(max_size=10).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
    ),
    max_size=40,
    unique_by=lambda e: e[0].encode(),
).map(lambda es: sorted(es, key=lambda e: e[0].encode()))


@settings(max_examples=100, deadline=None)
@given(_entries, st.sampled_from(["md5", "xxh3_128"]), st.integers(1, 7))
def test_agree_round_trip(entries, alg: str, block: int) -> None:
    entries = [ManifestEntry(p, a, d, s, r, "", "") for p, a, d, s, r in entries]
    outs = [write(i, entries, alg, block) for i in IMPLS]
    assert all(o == outs[0] for o in outs)
    for i in IMPLS:
        r = i.manifest.ManifestReader(io.BytesIO(outs[0][0]))
        assert list(r) == entries
        assert r.summary == outs[0][1]
