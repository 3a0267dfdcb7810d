from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.native._s3page_py import S3PageError

V2 = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix/><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x20AC;</Key>
    <LastModified>2024-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;0123abcd&quot;</ETag><Size>12</Size>
    <Owner><ID>x</ID><DisplayName>y</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>dir/with space/ünï cödé</Key><ETag>"ff"</ETag><Size>0</Size></Contents>
  <Contents><Key>z</Key><ETag>plain</ETag><Size>9223372036854775807</Size></Contents>
  <CommonPrefixes><Prefix>p1/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>p&amp;2/</Prefix></CommonPrefixes>
  <NextContinuationToken>tok+/=</NextContinuationToken>
</ListBucketResult>
""".encode()

VERSIONS = b"""<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<IsTruncated>false</IsTruncated><NextKeyMarker>k</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>
<DeleteMarker><Key>a</Key><VersionId>3</VersionId><IsLatest>true</IsLatest></DeleteMarker>
<Version><Key>a</Key><VersionId>2</VersionId><IsLatest>false</IsLatest><Size>3</Size><ETag>"e1"</ETag></Version>
<Version><Key>b</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>t</LastModified><Size>4</Size><ETag>"e2"</ETag></Version>
<Version><Key>c</Key><VersionId>7</VersionId><IsLatest>true</IsLatest><Size>5</Size><ETag>"e3"</ETag></Version>
<DeleteMarker><Key>d</Key><VersionId>1</VersionId><IsLatest>false</IsLatest></DeleteMarker>
</ListVersionsResult>"""


def rows(page) -> list[tuple[str, str, int, str, str]]:
    return [
        (page.key(i), page.etag(i), page.size(i), page.version_id(i), page.last_modified(i)) for i in range(page.count)
    ]


def test_v2(impl: Impl) -> None:
    p = impl.s3page.parse_list_page(V2)
    assert p.kind == "v2" and p.count == 3 and len(p) == 3 and p.is_truncated
    assert p.keys() == ["a & b <c> \"d\" 'e' A€", "dir/with space/ünï cödé", "z"]
    assert rows(p)[0] == (p.keys()[0], "0123abcd", 12, "", "2024-01-01T00:00:00.000Z")
    assert p.etag(1) == "ff" and p.etag(2) == "plain" and p.size(2) == 2**63 - 1
    assert p.common_prefixes == ["p1/", "p&2/"]
    assert p.next_continuation_token == "tok+/="
    assert p.last_key == "z"
    with pytest.raises(IndexError):
        p.key(3)
    with pytest.raises(IndexError):
        p.size(-1)


def test_versions(impl: Impl) -> None:
    p = impl.s3page.parse_list_page(VERSIONS)
    assert p.kind == "versions" and not p.is_truncated
    assert rows(p) == [("b", "e2", 4, "null", "t"), ("c", "e3", 5, "7", "")]
    assert p.next_key_marker == "k" and p.next_version_id_marker == "v9"
    assert p.last_key == "d"


def test_url_encoding(impl: Impl) -> None:
    body = (
        b"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%20b+c%E2%82%AC%zz</Key>"
        b"<Size>1</Size></Contents><CommonPrefixes><Prefix>p%2F</Prefix></CommonPrefixes>"
        b"</ListBucketResult>"
    )
    p = impl.s3page.parse_list_page(body)
    assert p.keys() == ["a b c€%zz"] and p.common_prefixes == ["p/"] and p.last_key == "a b c€%zz"


def test_empty_and_long(impl: Impl) -> None:
    assert impl.s3page.parse_list_page(b"<ListBucketResult/>").count == 0
    key = "k" * 1024 + "é" * 300
    body = f"<ListBucketResult><Contents><Key>{key}</Key><Size>1</Size></Contents></ListBucketResult>"
    assert impl.s3page.parse_list_page(body.encode()).keys() == [key]


@pytest.mark.parametrize(
    "body, match",
    [
        (b"", "no root"),
        (b"garbage", "outside the root"),
        (b"<html><body/></html>", "root element <html>"),
        (V2[:-40], "truncated"),
        (b"<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>", "entity"),
        (b"<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>", "entity"),
        (b"<ListBucketResult><Contents><Key>\xff</Key><Size>1</Size></Contents></ListBucketResult>", "UTF-8"),
        (b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>", "Size"),
        (b"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>", "Size"),
        (b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", "without <Key>"),
        (b"<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>", "IsTruncated"),
        (b"<ListBucketResult></ListBucketResult><x/>", "after the root"),
        (b"<!DOCTYPE x><ListBucketResult/>", "unsupported"),
        (b"<ListBucketResult><a></b></ListBucketResult>", "unexpected end tag"),
        (
            b"<?xml version='1.0'?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>",
            "SlowDown: Please reduce",
        ),
    ],
)
def test_errors(impl: Impl, body: bytes, match: str) -> None:
    with pytest.raises(S3PageError, match=match):
        impl.s3page.parse_list_page(body)


def test_every_truncation_fails(impl: Impl) -> None:
    body = V2.rstrip()
    for i in range(len(body)):
        with pytest.raises(S3PageError):
            impl.s3page.parse_list_page(body[:i])


def _outcome(impl: Impl, body: bytes) -> object:
    try:
        p = impl.s3page.parse_list_page(body)
    except S3PageError as e:
        return ("error", str(e))
    return (
        p.kind,
        p.count,
        p.is_truncated,
        p.next_continuation_token,
        p.next_key_marker,
        p.next_version_id_marker,
        p.common_prefixes,
        p.last_key,
        rows(p),
    )


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
_xml_safe = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("&<>\"' %+\t\n"),
    max_size=40,
)


def _enc(s: str, numeric: bool) -> str:
    out = escape(s, {'"': "&quot;", "'": "&apos;"})
    if numeric:
        out = "".join(f"&#{ord(c)};" if not c.isascii() else c for c in out)
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_xml_safe, st.integers(0, 2**63 - 1), _xml_safe, st.booleans(), st.booleans()), max_size=8),
    st.sampled_from(["v2", "versions"]),
    st.booleans(),
    st.lists(_xml_safe, max_size=3),
)
def test_agree_generated(entries, kind, url, prefixes) -> None:
    from urllib.parse import quote

    root = "ListBucketResult" if kind == "v2" else "ListVersionsResult"
    parts = [f'<?xml version="1.0"?>\n<{root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
    if url:
        parts.append("<EncodingType>url</EncodingType>")
    for key, size, etag, latest, numeric in entries:
        k = quote(key, safe="/") if url else _enc(key, numeric)
        elem = "Contents" if kind == "v2" else ("Version" if size % 3 else "DeleteMarker")
        parts.append(
            f"<{elem}>\n  <Key>{k}</Key><ETag>&quot;{_enc(etag, numeric)}&quot;</ETag>"
            f"<Size>{size}</Size><VersionId>v{size}</VersionId>"
            f"<IsLatest>{'true' if latest else 'false'}</IsLatest><Owner><ID/></Owner></{elem}>"
        )
    for pfx in prefixes:
        parts.append(f"<CommonPrefixes><Prefix>{quote(pfx) if url else _enc(pfx, False)}</Prefix></CommonPrefixes>")
    parts.append(f"<IsTruncated>false</IsTruncated></{root}>")
    body = "".join(parts).encode()
    outcomes = [_outcome(i, body) for i in IMPLS]
    assert all(o == outcomes[0] for o in outcomes)
    assert outcomes[0][0] != "error"
    if kind == "v2":
        assert outcomes[0][8] == [(k, e, s, "", "") for k, s, e, _, _ in entries]


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(lambda a, b: V2[:a] + b + V2[a:], st.integers(0, len(V2)), st.binary(max_size=8))
)
def test_agree_garbage(body: bytes) -> None:
    outcomes = [_outcome(i, body) for i in IMPLS]
    assert all(o == outcomes[0] for o in outcomes)
