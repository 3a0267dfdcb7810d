"""Hand-framed blob chunks are byte for byte the protobuf messages (depot.core.blobwire)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from depot.core import blobwire
from depot.manifest.v1 import manifest_pb2 as pb

CHUNK = blobwire.key(pb.UploadBlobRequest.CHUNK_FIELD_NUMBER)
DATA = blobwire.key(pb.BlobChunk.DATA_FIELD_NUMBER)


@given(st.binary(max_size=70_000))
def test_frame_is_the_protobuf_serialization(data: bytes) -> None:
    assert blobwire.frame(CHUNK, data) == pb.UploadBlobRequest(chunk=data).SerializeToString()
    # BlobChunk.data is no oneof: protobuf omits it when empty, and reads the framed form the same.
    assert pb.BlobChunk.FromString(blobwire.frame(DATA, data)).data == data
    if data:
        assert blobwire.frame(DATA, data) == pb.BlobChunk(data=data).SerializeToString()


@given(st.binary(max_size=70_000))
def test_unframe_reads_what_protobuf_writes(data: bytes) -> None:
    # An empty chunk is a present oneof field (it still serializes), so it frames too.
    got = blobwire.unframe(CHUNK, pb.UploadBlobRequest(chunk=data).SerializeToString())
    assert got is not None and bytes(got) == data


def test_a_sizable_chunk_has_a_multi_byte_length() -> None:
    data = bytes(range(256)) * 16_384  # 4 MiB: a 4-byte varint length
    got = blobwire.unframe(DATA, blobwire.frame(DATA, data))
    assert got is not None and bytes(got) == data


@given(
    st.lists(
        st.tuples(st.sampled_from(["xxh3_128", "md5", ""]), st.text(max_size=40), st.binary(max_size=20_000)),
        max_size=8,
    )
)
def test_blob_list_is_the_batch_read_response(blobs: list[tuple[str, str, bytes]]) -> None:
    digests = [pb.BlobDigest(algorithm=a, digest=d) for a, d, _ in blobs]
    want = pb.BatchReadBlobsResponse(
        blobs=[pb.BlobData(digest=g, data=data) for g, (_, _, data) in zip(digests, blobs)]
    ).SerializeToString()
    got = blobwire.blob_list(
        blobwire.key(pb.BatchReadBlobsResponse.BLOBS_FIELD_NUMBER),
        blobwire.key(pb.BlobData.DIGEST_FIELD_NUMBER),
        blobwire.key(pb.BlobData.DATA_FIELD_NUMBER),
        [(g.SerializeToString(), data) for g, (_, _, data) in zip(digests, blobs)],
    )
    assert got == want


def test_other_messages_are_left_to_protobuf() -> None:
    header = pb.UploadBlobRequest(header=pb.UploadBlobHeader(entity="e", size=3)).SerializeToString()
    chunk = pb.UploadBlobRequest(chunk=b"abc").SerializeToString()
    assert blobwire.unframe(CHUNK, header) is None
    assert blobwire.unframe(CHUNK, b"") is None
    # Two fields (protobuf keeps the last of a oneof), a cut message, a length past the end.
    assert blobwire.unframe(CHUNK, chunk + chunk) is None
    assert blobwire.unframe(CHUNK, chunk[:-1]) is None
    assert blobwire.unframe(CHUNK, bytes([CHUNK, 0x80])) is None
    assert blobwire.unframe(CHUNK, bytes([CHUNK]) + b"\xff" * 12) is None
