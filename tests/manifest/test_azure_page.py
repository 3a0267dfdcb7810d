"""Azure List Blobs pages through the native page parser: both implementations, same answers."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.native._s3page_py import S3PageError

# The shape Azure (and Azurite) answer restype=container&comp=list with:
# objects one level deeper than S3's, properties nested, metadata ignored.
PAGE = b"""<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://acct.blob.core.windows.net/" ContainerName="c">
  <Prefix>data/</Prefix><Marker/><MaxResults>3</MaxResults>
  <Blobs>
    <Blob><Name>data/a &amp; b</Name>
      <VersionId>2024-01-01T00:00:00.1234567Z</VersionId><IsCurrentVersion>true</IsCurrentVersion>
      <Properties><Creation-Time>Mon, 01 Jan 2024 00:00:00 GMT</Creation-Time>
        <Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>
        <Etag>0x8DC0123456789AB</Etag><Content-Length>12</Content-Length>
        <Content-Type>application/octet-stream</Content-Type><Content-MD5>abc=</Content-MD5>
        <BlobType>BlockBlob</BlobType></Properties>
      <Metadata><Name>not the blob name</Name><Etag>nor its etag</Etag></Metadata></Blob>
    <BlobPrefix><Name>data/sub/</Name></BlobPrefix>
    <Blob><Name>data/empty</Name><Properties><Etag>"0x1"</Etag><Content-Length>0</Content-Length></Properties></Blob>
  </Blobs>
  <NextMarker>2!84!MDAw</NextMarker>
</EnumerationResults>"""


@pytest.fixture(params=IMPLS, ids=lambda i: i.name)
def impl(request: pytest.FixtureRequest) -> Impl:
    return request.param  # type: ignore[no-any-return]


def rows(page) -> list[tuple[str, str, int, str, str]]:
    return [
        (page.key(i), page.etag(i), page.size(i), page.version_id(i), page.last_modified(i)) for i in range(page.count)
    ]


def test_azure_page(impl: Impl) -> None:
    p = impl.s3page.parse_list_page(PAGE)
    assert p.kind == "azure" and p.count == 2
    assert rows(p) == [
        ("data/a & b", "0x8DC0123456789AB", 12, "2024-01-01T00:00:00.1234567Z", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("data/empty", "0x1", 0, "", ""),
    ]
    assert p.common_prefixes == ["data/sub/"]
    # Azure has no IsTruncated: NextMarker is the continuation.
    assert p.is_truncated and p.next_continuation_token == "2!84!MDAw"
    assert p.last_key == "data/empty"


def test_directory_stubs_are_not_objects(impl: Impl) -> None:
    # hdi_isfolder only counts inside <Metadata>; W&B skips such blobs.
    body = (
        b"<EnumerationResults><Blobs>"
        b"<Blob><Name>d</Name><Properties><Content-Length>0</Content-Length></Properties>"
        b"<Metadata><hdi_isfolder>true</hdi_isfolder></Metadata></Blob>"
        b"<Blob><Name>d/f</Name><Properties><Content-Length>1</Content-Length>"
        b"<hdi_isfolder>true</hdi_isfolder></Properties><Metadata><hdi_isfolder>false</hdi_isfolder></Metadata></Blob>"
        b"</Blobs></EnumerationResults>"
    )
    p = impl.s3page.parse_list_page(body)
    assert p.keys() == ["d/f"] and p.last_key == "d/f"


def test_last_page_has_an_empty_next_marker(impl: Impl) -> None:
    body = b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
    p = impl.s3page.parse_list_page(body)
    assert p.kind == "azure" and p.count == 0 and not p.is_truncated and p.next_continuation_token == ""


def test_blob_outside_blobs_is_not_an_object(impl: Impl) -> None:
    body = b"<EnumerationResults><Other><Blob><Name>x</Name></Blob></Other></EnumerationResults>"
    assert impl.s3page.parse_list_page(body).count == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"<EnumerationResults><Blobs><Blob><Properties><Content-Length>1</Content-Length>"
            b"</Properties></Blob></Blobs></EnumerationResults>",
            "malformed listing: <Blob> without <Name>",
        ),
        (
            b"<EnumerationResults><Blobs><Blob><Name>k</Name></Blob></Blobs></EnumerationResults>",
            "malformed listing: bad or missing <Content-Length> for key 'k'",
        ),
        (
            b"<Error><Code>AuthenticationFailed</Code><Message>no</Message></Error>",
            "S3 error AuthenticationFailed: no",
        ),
        (b"<EnumerationResults><Blobs><Blob><Name>k</Name>", "truncated XML"),
    ],
)
def test_azure_errors(impl: Impl, body: bytes, message: str) -> None:
    with pytest.raises(S3PageError, match=message):
        impl.s3page.parse_list_page(body)


_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    blobs=st.lists(
        st.tuples(_names, st.integers(0, 2**63 - 1), st.sampled_from(["", "0x8D1", '"0x8D2"']), st.booleans()),
        max_size=8,
    ),
    marker=st.sampled_from(["", "m1"]),
)
def test_twins_agree_on_azure_pages(blobs: list[tuple[str, int, str, bool]], marker: str) -> None:
    parts = ["<EnumerationResults><Blobs>"]
    for name, size, etag, versioned in blobs:
        vid = "<VersionId>v</VersionId>" if versioned else ""
        parts.append(
            f"<Blob><Name>{escape(name)}</Name>{vid}<Properties><Etag>{escape(etag)}</Etag>"
            f"<Content-Length>{size}</Content-Length></Properties></Blob>"
        )
    parts.append(f"</Blobs><NextMarker>{marker}</NextMarker></EnumerationResults>")
    body = "".join(parts).encode()
    answers = []
    for impl in IMPLS:
        try:
            p = impl.s3page.parse_list_page(body)
            answers.append((rows(p), p.is_truncated, p.next_continuation_token, p.common_prefixes))
        except S3PageError as err:
            answers.append(("error", str(err)))
    assert all(a == answers[0] for a in answers)
    if answers[0][0] != "error":
        assert len(answers[0][0]) == len(blobs)
