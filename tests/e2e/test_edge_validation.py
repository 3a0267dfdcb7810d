"""Bad values are refused at the API edge with INVALID_ARGUMENT, and a stored
value no API would accept today still reads back (issue 8, items 4-6)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
import xxhash
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from support.stubs import Stubs, b64_xxh

import depot
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb
from depot.native import artifact_digest

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PROJECT = "entities/team/projects/p"
COLL = f"{PROJECT}/artifacts"
YEAR = 365 * 86400


@pytest.fixture
def stubs(channel, server) -> Stubs:
    # The server fixture creates the team "team" (tests/conftest.py).
    return Stubs(channel, server.admin_key)


def _code(fn) -> grpc.StatusCode:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def _create(stubs: Stubs, **kw) -> pb.ArtifactVersion:
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="dataset", **kw)
    return stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)


# -- item 4: bounded TTLs, timestamps and durations; reads survive any stored value


@pytest.mark.parametrize(
    "ttl",
    [
        duration_pb2.Duration(seconds=8000 * YEAR),
        duration_pb2.Duration(seconds=101 * YEAR),
        duration_pb2.Duration(seconds=2**62),
        duration_pb2.Duration(seconds=-(2**62)),
        duration_pb2.Duration(seconds=5, nanos=-1),
        duration_pb2.Duration(seconds=5, nanos=2 * 10**9),
    ],
    ids=["8000y", "101y", "2^62s", "-2^62s", "mixed-sign", "nanos-overflow"],
)
def test_out_of_range_ttls_are_invalid_argument(stubs: Stubs, ttl: duration_pb2.Duration) -> None:
    assert _code(lambda: _create(stubs, ttl=ttl)) == INVALID
    v = stubs.log("team", "p", "ds", {"f": b"1"})
    update = pb.UpdateArtifactVersionRequest(
        version=pb.ArtifactVersion(name=v.name, ttl=ttl), update_mask=field_mask_pb2.FieldMask(paths=["ttl"])
    )
    assert _code(lambda: stubs.artifacts.UpdateArtifactVersion(update, metadata=stubs.md)) == INVALID
    settings = pb.UpdateEntitySettingsRequest(
        name="entities/team",
        settings=pb.EntitySettings(default_ttl=ttl),
        update_mask=field_mask_pb2.FieldMask(paths=["default_ttl"]),
    )
    assert _code(lambda: stubs.access.UpdateEntitySettings(settings, metadata=stubs.md)) == INVALID
    # Nothing half-written: the version reads back with no TTL.
    assert not stubs.get(v.name).HasField("ttl")


def test_hundred_years_is_the_documented_maximum(stubs: Stubs) -> None:
    v = _create(stubs, ttl=duration_pb2.Duration(seconds=36525 * 86400))
    assert v.ttl.seconds == 36525 * 86400


@pytest.mark.parametrize(
    "ts",
    [
        timestamp_pb2.Timestamp(seconds=2**62),
        timestamp_pb2.Timestamp(seconds=-(2**62)),
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
        timestamp_pb2.Timestamp(seconds=0, nanos=10**9),
        timestamp_pb2.Timestamp(seconds=253402300800),  # 10000-01-01
    ],
    ids=["2^62", "-2^62", "negative-nanos", "nanos-1e9", "year-10000"],
)
def test_out_of_range_timestamps_are_invalid_argument(stubs: Stubs, ts: timestamp_pb2.Timestamp) -> None:
    for field in ("created_after", "created_before"):
        req = pb.ListArtifactVersionsRequest(parent=f"{COLL}/ds", **{field: ts})
        assert _code(lambda: stubs.artifacts.ListArtifactVersions(req, metadata=stubs.md)) == INVALID


def _sql(database_url: str, query: str, *args) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(query, *args)
        finally:
            await conn.close()

    asyncio.run(run())


# 8,000 years as the API stored it before the bound (a timedelta is days), and
# an interval past what a timedelta holds at all.
@pytest.mark.parametrize("interval", ["2920000 days", "100000000 years"])
def test_a_stored_huge_ttl_still_reads(stubs: Stubs, database_url: str, interval: str) -> None:
    """A row written before TTLs were bounded: reads answer, expire_time is clamped."""
    own = stubs.log("team", "p", "own", {"f": b"1"})
    inherits = stubs.log("team", "p", "inherits", {"f": b"2"})
    # Migration 0004 clamps such rows and bounds the columns; reads must hold even without that.
    _sql(database_url, "ALTER TABLE versions DROP CONSTRAINT versions_ttl_range")
    _sql(database_url, "ALTER TABLE entities DROP CONSTRAINT entities_default_ttl_range")
    _sql(
        database_url,
        "UPDATE versions SET ttl = $1::text::interval, ttl_inherit = false WHERE uid = $2::uuid",
        interval,
        own.uid,
    )
    _sql(database_url, "UPDATE entities SET default_ttl = $1::text::interval WHERE name = 'team'", interval)
    for v in (own, inherits):
        got = stubs.get(v.name)
        assert got.ttl.seconds >= 7000 * YEAR  # a month is 30 days in asyncpg's reading
        assert got.expire_time.ToDatetime().year == 9999
        listed = stubs.artifacts.ListArtifactVersions(
            pb.ListArtifactVersionsRequest(parent=v.name.rsplit("/versions/", 1)[0]), metadata=stubs.md
        )
        assert [x.uid for x in listed.versions] == [v.uid]
        assert listed.versions[0].expire_time == got.expire_time
    entity = stubs.access.GetEntity(pb.GetEntityRequest(name="entities/team"), metadata=stubs.md)
    assert entity.settings.default_ttl.seconds >= 7000 * YEAR


# -- item 6: JSON, text and sizes


def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize(
    "value",
    [
        _deep(1000),
        "[" * 100_000 + "]" * 100_000,
        _deep(65),
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": -Infinity}',
        '{"x": 1e999}',
        '{"x": "a\\u0000b"}',
        '{"a\\u0000": 1}',
        '{"x": "\\ud800"}',
        "[1, 2]",
    ],
    ids=["deep-1000", "deep-array", "deep-65", "nan", "inf", "-inf", "1e999", "nul", "nul-key", "surrogate", "list"],
)
def test_bad_json_is_invalid_argument(stubs: Stubs, value: str) -> None:
    assert _code(lambda: _create(stubs, metadata_json=value)) == INVALID
    run = pb.CreateRunRequest(parent=PROJECT, run_id="r1", run=pb.Run(job_type="t", config_json=value))
    assert _code(lambda: stubs.artifacts.CreateRun(run, metadata=stubs.md)) == INVALID
    listing = pb.ListArtifactVersionsRequest(parent=f"{COLL}/ds", metadata_key="k", metadata_value_json=value)
    if value != "[1, 2]":  # any JSON value may be matched
        assert _code(lambda: stubs.artifacts.ListArtifactVersions(listing, metadata=stubs.md)) == INVALID


def test_json_at_the_depth_limit_is_accepted(stubs: Stubs) -> None:
    v = _create(stubs, metadata_json=_deep(64))
    assert v.metadata_json.count("{") == 64


@pytest.mark.parametrize("field", ["description", "request_id", "type"])
def test_nul_in_strings_is_invalid_argument(stubs: Stubs, field: str) -> None:
    kw = {"description": "a", "request_id": uuid.uuid4().hex, "type": "dataset"}
    kw[field] = "a\0b"
    req = pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", **kw)
    assert _code(lambda: stubs.artifacts.CreateArtifactVersion(req, metadata=stubs.md)) == INVALID
    reg = pb.CreateRegistryRequest(
        parent="entities/team", registry_id="r", registry=pb.Registry(description="x\0y", accepted_types=["model"])
    )
    assert _code(lambda: stubs.registries.CreateRegistry(reg, metadata=stubs.md)) == INVALID


def test_entry_sizes_summing_past_int64_are_invalid_argument(stubs: Stubs) -> None:
    sizes = [2**62, 2**62 - 1]  # the sum is 2**63 - 1, the largest bigint
    entries = [
        mpb.ManifestEntry(path=f"f{i}", algorithm="etag", digest='"e"', size=n, ref=f"s3://b/f{i}")
        for i, n in enumerate(sizes)
    ]
    assert _code(lambda: stubs.put_manifest("team", entries)) == grpc.StatusCode.OK
    entries.append(mpb.ManifestEntry(path="f2", algorithm="etag", digest='"e"', size=1, ref="s3://b/f2"))
    assert _code(lambda: stubs.put_manifest("team", entries)) == INVALID
    assert _code(lambda: stubs.manifest("team", entries)) == INVALID


def test_bad_extra_json_is_invalid_argument(stubs: Stubs) -> None:
    for extra in (_deep(1000), '{"x": NaN}', '{"x": "\\u0000"}'):
        e = mpb.ManifestEntry(path="f", algorithm="etag", digest='"e"', size=1, ref="s3://b/f", extra_json=extra)
        assert _code(lambda e=e: stubs.put_manifest("team", [e])) == INVALID


# -- garbage on the wire, with and without a key


def _raw(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff\xff",
        b"\x0a\x02\xc3\x28",  # field 1 (string, or a message) holding invalid UTF-8
        b"\x0a\x10short",  # a length past the end
    ],
    ids=["garbage", "invalid-utf8", "truncated"],
)
@pytest.mark.parametrize("with_key", [True, False], ids=["admin", "no-key"])
def test_undecodable_requests_are_invalid_argument(channel, stubs: Stubs, payload: bytes, with_key: bool) -> None:
    md = stubs.md if with_key else ()
    for method in (
        "/depot.metadata.v1.ArtifactService/GetArtifactVersion",
        "/depot.manifest.v1.ManifestService/PutManifest",
        "/depot.gc.v1.GcService/RunNow",
    ):
        with pytest.raises(grpc.RpcError) as e:
            _raw(channel, method)(payload, metadata=md)
        assert e.value.code() == INVALID, (method, e.value.details())  # type: ignore[attr-defined]
        assert "not a valid message" in e.value.details()  # type: ignore[attr-defined]
        # The ErrorInfo trailer every other error carries.
        trailers = dict(e.value.trailing_metadata())  # type: ignore[attr-defined]
        assert "grpc-status-details-bin" in trailers


def test_undecodable_stream_message_is_invalid_argument(channel, stubs: Stubs) -> None:
    call = channel.stream_unary(
        "/depot.manifest.v1.ManifestService/CreateManifest",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    header = mpb.CreateManifestRequest(header=mpb.ManifestHeader(entity="team")).SerializeToString()
    with pytest.raises(grpc.RpcError) as e:
        call(iter([header, b"\xff\xff"]), metadata=stubs.md)
    assert e.value.code() == INVALID  # type: ignore[attr-defined]


# -- item 5: the digest forgery


def _forgery(stubs: Stubs) -> tuple[str, str]:
    """(digest of files aa and b, the forged path that spells both lines)."""
    data = b"payload"
    stubs.upload("team", data)
    d = b64_xxh(data)
    honest = artifact_digest("xxh3_128", [("aa", d), ("b", d)])
    return honest, f"aa:{d}\nb"


@pytest.mark.parametrize("path_of", [lambda f: f, lambda f: "x\x85y", lambda f: "tab\there", lambda f: "del\x7f"])
def test_control_characters_in_entry_paths_are_refused_by_the_manifest_service(stubs: Stubs, path_of) -> None:
    _, forged = _forgery(stubs)
    d = b64_xxh(b"payload")
    entry = mpb.ManifestEntry(path=path_of(forged), algorithm="xxh3_128", digest=d, size=7)
    for call in (stubs.put_manifest, stubs.manifest):
        with pytest.raises(grpc.RpcError) as e:
            call("team", [entry])
        assert e.value.code() == INVALID  # type: ignore[attr-defined]
        assert "control character" in e.value.details()  # type: ignore[attr-defined]
    inline = mpb.ManifestEntry(path=path_of(forged), algorithm="xxh3_128", digest=d, size=7, content=b"payload")
    assert _code(lambda: stubs.put_manifest("team", [inline])) == INVALID


def test_the_forged_manifest_never_shares_the_honest_digest(stubs: Stubs) -> None:
    honest, forged = _forgery(stubs)
    d = b64_xxh(b"payload")
    two = stubs.put_manifest("team", [mpb.ManifestEntry(path=p, algorithm="xxh3_128", digest=d, size=7) for p in "ab"])
    assert two.digest
    ref = stubs.put_manifest(
        "team",
        [
            mpb.ManifestEntry(path="aa", algorithm="xxh3_128", digest=d, size=7),
            mpb.ManifestEntry(path="b", algorithm="xxh3_128", digest=d, size=7),
        ],
    )
    assert ref.digest == honest
    with pytest.raises(grpc.RpcError):
        stubs.put_manifest("team", [mpb.ManifestEntry(path=forged, algorithm="xxh3_128", digest=d, size=7)])


def test_colon_in_a_checksummed_digest_is_refused(stubs: Stubs) -> None:
    e = mpb.ManifestEntry(path="a", algorithm="etag", digest='"x":y', size=1, ref="s3://b/a")
    assert _code(lambda: stubs.put_manifest("team", [e])) == INVALID
    # An unchecksummed reference's digest is its URI, as in W&B.
    ok = mpb.ManifestEntry(path="a", algorithm="none", digest="s3://b/a", size=0, ref="s3://b/a")
    assert _code(lambda: stubs.put_manifest("team", [ok])) == grpc.StatusCode.OK


@pytest.fixture
def sdk_artifact() -> Iterator[depot.Artifact]:
    yield depot.Artifact("ds", type="dataset")


def test_sdk_refuses_control_characters_in_entry_paths(sdk_artifact: depot.Artifact, tmp_path: Path) -> None:
    d = base64.b64encode(xxhash.xxh3_128(b"payload").digest()).decode()
    f = tmp_path / "f"
    f.write_bytes(b"payload")
    for name in (f"aa:{d}\nb", "a\rb", "a\x9bb", "a\x00b"):
        with pytest.raises(depot.DepotError, match="control character|NUL"):
            sdk_artifact.add_file(f, name=name)
        with pytest.raises(depot.DepotError), sdk_artifact.new_file(name) as out:
            out.write("x")
