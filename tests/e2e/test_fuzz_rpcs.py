"""Property-based fuzzing of every RPC of every service (issue 8, item 6).

The services' descriptors are enumerated (depot.metadata.v1, depot.manifest.v1,
depot.gc.v1); for each method Hypothesis builds request messages from the
fields' types with hostile values (extreme integers, NaN, NUL and control
characters, invalid-ish and valid-looking names, deep or non-finite JSON in
``*_json`` fields, out-of-range timestamps and durations, long strings,
random bytes) and raw garbage bytes. Every call goes through a real
all-in-one server, with an admin key and with none. The answer may be any
status but INTERNAL or UNKNOWN; afterwards the server still serves and an
artifact committed before the fuzzing still downloads and verifies.

The fuzzer's team ``fz`` is seeded with a project, a committed version
(``fz/p/ds:v0``, alias ``best``) and the run that logged it (``fz/p/runs/r1``), and
generated names point at them often, so mutations carrying hostile values
reach the database and later reads return what they stored; afterwards every
seeded thing still reads back without INTERNAL.

Bounded: a few examples per method (DEPOT_FUZZ_EXAMPLES to raise it), so the
file runs in about a minute on two cores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import depot
from depot.gc.v1 import gc_pb2
from depot.manifest.v1 import manifest_pb2
from depot.metadata.v1 import metadata_pb2, metadata_pb2_grpc
from depot.metadata.v1 import metadata_pb2 as pb

EXAMPLES = int(os.environ.get("DEPOT_FUZZ_EXAMPLES", "20"))
BAD = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
# The fuzzer's own team: names it may guess. The guarded artifact lives in
# another entity, so no generated request (a TTL, a purge) targets it on purpose.
TEAM = "fz"
METHODS: list[MethodDescriptor] = [
    m
    for module in (metadata_pb2, manifest_pb2, gc_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for m in service.methods
]

# --- strategies from field types ---------------------------------------------

_NAMES = [
    f"entities/{TEAM}",
    f"entities/{TEAM}/projects/p",
    f"entities/{TEAM}/projects/p/artifacts/ds",
    f"entities/{TEAM}/projects/p/artifacts/ds/versions/v0",
    f"entities/{TEAM}/projects/p/artifacts/ds/versions/latest",
    f"entities/{TEAM}/projects/p/artifacts/ds/versions/best",
    f"{TEAM}/p/ds:v0",
    f"{TEAM}/p/runs/r1",
    "r1",
    "best",
    "entities/admin",
    f"entities/{TEAM}/projects/p/runs/r1",
    f"entities/{TEAM}/registries/reg",
    TEAM,
    "p",
    "ds",
    "latest",
    "v0",
    "v99999999999",
    "dataset",
    "s3://bucket/prefix/",
    "file:///etc/passwd",
    "http://127.0.0.1:1/x",
    "../../etc/passwd",
    "a//b",
    "0" * 64,
]
_HOSTILE = [
    "",
    "\0",
    "a\0b",
    "\n",
    "aa:00000000000000000000000000000000\nb",
    "\t\r\x1b\x7f\x85\x9f",
    "é" * 200,
    "x" * 5000,
    "\u202e\ufeff",
    "%00",
    "' OR 1=1 --",
    "entities/../projects/x",
    "AAAAAAAAAAAAAAAAAAAAAA==",
]
# Real names weigh double (one_of picks a branch uniformly): most calls
# should get past "not found" and store or read something.
_strings = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(_NAMES),
    st.sampled_from(_HOSTILE),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=300),
)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=8,
)
_json_strings = st.one_of(
    st.sampled_from(
        [
            _deep(1000),
            _deep(100_000),
            '{"a":' * 70 + "1" + "}" * 70,
            '{"x": NaN}',
            '{"x": Infinity}',
            '{"x": 1e999}',
            '{"x": -1e999}',
            '{"x": "\\u0000"}',
            '{"\\u0000": 1}',
            '{"x": "\\ud800"}',
            '{"x": 1' + "0" * 5000 + "}",
            "{",
            "null",
            '"s"',
        ]
    ),
    _json_values.map(lambda v: json.dumps(v)),
    st.dictionaries(st.text(max_size=5), _json_values, max_size=3).map(lambda v: json.dumps(v)),
    _strings,
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [v for v in (lo, hi, -1, 0, 1, 2, 7, 1000, 2**31 - 1, 2**62, 2**63 - 1) if lo <= v <= hi]
    return st.sampled_from(edges) | st.integers(lo, hi)


def _scalar(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return _json_strings if fd.name.endswith("_json") else _strings
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if fd.type == FieldDescriptor.TYPE_DOUBLE else 32)
    return _ints(*_INT_RANGES[fd.type])


def _well_known(full_name: str) -> st.SearchStrategy[dict[str, int]] | None:
    # Timestamps and Durations get the values that once overflowed: +-2**62
    # seconds, negative or too-large nanos, the edges of the valid range.
    if full_name == "google.protobuf.Timestamp":
        secs = st.sampled_from([0, 1, -1, 2**62, -(2**62), 253402300799, 253402300800, -62135596801]) | st.integers(
            -(2**63), 2**63 - 1
        )
    elif full_name == "google.protobuf.Duration":
        secs = st.sampled_from([0, 1, -1, 2**62, -(2**62), 3155760000, 315576000001]) | st.integers(-(2**63), 2**63 - 1)
    else:
        return None
    nanos = st.sampled_from([0, 1, -1, 999_999_999, 10**9, -(2**31)]) | st.integers(-(2**31), 2**31 - 1)
    return st.fixed_dictionaries({"seconds": secs, "nanos": nanos})


@st.composite
def messages(draw: st.DrawFn, desc: Any, depth: int = 0) -> Message:
    cls = message_factory.GetMessageClass(desc)
    msg = cls()
    wk = _well_known(desc.full_name)
    if wk is not None:
        for k, v in draw(wk).items():
            setattr(msg, k, v)
        return msg
    for fd in desc.fields:
        if not draw(st.booleans()):
            continue
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                continue  # no map fields in the request messages
            if depth >= 3:
                continue
            sub = messages(fd.message_type, depth + 1)
            if fd.is_repeated:
                for item in draw(st.lists(sub, max_size=3)):
                    getattr(msg, fd.name).add().CopyFrom(item)
            else:
                getattr(msg, fd.name).CopyFrom(draw(sub))
        elif fd.is_repeated:
            getattr(msg, fd.name).extend(draw(st.lists(_scalar(fd), max_size=4)))
        else:
            setattr(msg, fd.name, draw(_scalar(fd)))
    return msg


# --- calling any method ----------------------------------------------------------


def _path(m: MethodDescriptor) -> str:
    return f"/{m.containing_service.full_name}/{m.name}"


def _call(channel: grpc.Channel, m: MethodDescriptor, requests: list[bytes], md: tuple) -> grpc.StatusCode:
    """Sends serialized requests (a stream when the method takes one); the status."""
    ident = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    path = _path(m)
    try:
        if m.client_streaming and m.server_streaming:
            for _ in channel.stream_stream(path, **ident)(iter(requests), metadata=md, timeout=30):
                pass
        elif m.client_streaming:
            channel.stream_unary(path, **ident)(iter(requests), metadata=md, timeout=30)
        elif m.server_streaming:
            for _ in channel.unary_stream(path, **ident)(requests[0], metadata=md, timeout=30):
                pass
        else:
            channel.unary_unary(path, **ident)(requests[0], metadata=md, timeout=30)
    except grpc.RpcError as e:
        return e.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def _check(channel: grpc.Channel, m: MethodDescriptor, requests: list[bytes], keys: list[tuple]) -> None:
    for md in keys:
        code = _call(channel, m, requests, md)
        assert code not in BAD, f"{_path(m)} answered {code} to {requests!r:.500} ({'admin' if md else 'no key'})"
        # A deadline here would be a handler that hangs on bad input.
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, _path(m)


# --- the guarded artifact ----------------------------------------------------------


@pytest.fixture
def guarded(server, tmp_path: Path) -> Iterator[depot.Artifact]:
    """An artifact committed (and downloaded once) before any fuzzing."""
    admin = metadata_pb2_grpc.AccessServiceStub(grpc.insecure_channel(server.address))
    md = (("authorization", f"Bearer {server.admin_key}"),)
    for entity in ("keep", TEAM):
        admin.CreateEntity(pb.CreateEntityRequest(entity_id=entity, entity=pb.Entity(kind="team")), metadata=md)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_bytes(b"alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)  # uploaded, not inline
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="keep", project="proj", job_type="prep", **kw) as run:
        art = depot.Artifact("ds", type="dataset")
        art.add_dir(data)
        logged = run.log_artifact(art).wait()
    # What the fuzzer's names point at: fz/p/ds:v0 (alias best) logged by run r1.
    with depot.init(entity=TEAM, project="p", name="r1", job_type="seed", **kw) as run:
        seed = depot.Artifact("ds", type="dataset")
        seed.add_file(data / "a.txt")
        run.log_artifact(seed, aliases=["best"]).wait()
    yield logged


def _assert_seed_reads_back(server) -> None:
    """Whatever the fuzzing stored on the seeded things reads back: no INTERNAL."""
    channel = grpc.insecure_channel(server.address)
    meta = metadata_pb2_grpc.ArtifactServiceStub(channel)
    md = (("authorization", f"Bearer {server.admin_key}"),)
    project = f"entities/{TEAM}/projects/p"
    reads = [
        lambda: meta.GetArtifactVersion(
            pb.GetArtifactVersionRequest(name=f"{project}/artifacts/ds/versions/v0"), metadata=md
        ),
        lambda: meta.ListArtifactVersions(
            pb.ListArtifactVersionsRequest(parent=f"{project}/artifacts/ds"), metadata=md
        ),
        lambda: meta.GetRun(pb.GetRunRequest(name=f"{project}/runs/r1"), metadata=md),
        lambda: meta.ListCollections(pb.ListCollectionsRequest(parent=project), metadata=md),
        lambda: meta.ListProjects(pb.ListProjectsRequest(parent=f"entities/{TEAM}"), metadata=md),
    ]
    for read in reads:
        try:
            read()
        except grpc.RpcError as e:
            # Fuzzed deletes may have removed a thing: gone is fine, broken is not.
            assert e.code() not in BAD, e.details()  # type: ignore[attr-defined]


def _assert_still_serving(server, tmp_path: Path, logged: Any) -> None:
    channel = grpc.insecure_channel(server.address)
    md = (("authorization", f"Bearer {server.admin_key}"),)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    caller = metadata_pb2_grpc.AccessServiceStub(channel).GetCaller(pb.GetCallerRequest(), metadata=md, timeout=10)
    assert caller.superuser
    art = depot.Api(server.address, server.admin_key).artifact("keep/proj/ds:v0")
    assert art.digest == logged.digest
    out = art.download(tmp_path / f"out-{os.urandom(4).hex()}")  # verifies every file's digest
    assert (out / "a.txt").read_bytes() == b"alpha\n"
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 300


# --- the fuzz tests ------------------------------------------------------------------


def test_every_method_is_enumerated() -> None:
    names = {_path(m) for m in METHODS}
    assert "/depot.metadata.v1.ArtifactService/CreateArtifactVersion" in names
    assert "/depot.manifest.v1.ManifestService/CreateManifest" in names
    assert "/depot.gc.v1.GcService/RunNow" in names
    assert "/depot.metadata.v1.LineageService/WalkLineage" in names
    # 41 metadata RPCs in four services (GetLineage merged into WalkLineage; issue 12
    # added the four deletion RPCs), 9 manifest (issue 11 added BatchUpdateBlobs,
    # BatchReadBlobs, ResolveReferences), 2 gc (RunNow, GetStatus).
    assert len(names) == 52


def _fuzz_messages(channel: grpc.Channel, m: MethodDescriptor, keys: list[tuple]) -> None:
    requests = st.lists(messages(m.input_type), min_size=1, max_size=3 if m.client_streaming else 1)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(requests)
    def fuzz(reqs: list[Message]) -> None:
        _check(channel, m, [r.SerializeToString() for r in reqs], keys)

    fuzz()


def _fuzz_bytes(channel: grpc.Channel, m: MethodDescriptor, keys: list[tuple]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=2))
    def fuzz(payloads: list[bytes]) -> None:
        _check(channel, m, payloads, keys)

    fuzz()


def test_fuzz_every_rpc(server, guarded, tmp_path: Path) -> None:
    channel = grpc.insecure_channel(server.address)
    keys = [(("authorization", f"Bearer {server.admin_key}"),), ()]
    _assert_still_serving(server, tmp_path, guarded)
    for m in METHODS:
        _fuzz_messages(channel, m, keys)
    _assert_seed_reads_back(server)
    _assert_still_serving(server, tmp_path, guarded)


def test_garbage_bytes_to_every_rpc(server, guarded, tmp_path: Path) -> None:
    channel = grpc.insecure_channel(server.address)
    keys = [(("authorization", f"Bearer {server.admin_key}"),), ()]
    fixed = [b"\xff" * 8, b"\x0a\x02\xc3\x28", b"\x0a\x7f", b"\x08" + b"\xff" * 10, b"\x12\x03\x0a\x01\xff"]
    for m in METHODS:
        for payload in fixed:
            _check(channel, m, [payload], keys)
        _fuzz_bytes(channel, m, keys)
    _assert_still_serving(server, tmp_path, guarded)
