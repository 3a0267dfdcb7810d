"""ResolveReferences: a reference listing as a long-running operation, against a real server.

The S3 side is the simulator (bench/s3sim.py) with request latency, so a
listing takes seconds; its request counter shows whether a listing ran again
or stopped. Bad keys come from moto, where any key can be stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import grpc
import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from support.entities import create_team
from support.servers import ServerThread, make_config

from depot.common.v1 import common_pb2
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.manifest.v1 import manifest_pb2_grpc

# Serialized requests at 40 ms each: ~60 requests, a listing of a few seconds.
OBJECTS = 50_000
LATENCY_MS = 40.0
GRACE_S = 1.0


@pytest.fixture
def sim() -> Iterator[s3sim.SimulatorThread]:
    with s3sim.start_simulator(objects=OBJECTS, layout="flat", latency_ms=LATENCY_MS, concurrency_cap=1) as sim:
        yield sim
        # Requests of a cancelled listing still queue at the simulator; stopping
        # it under them leaves its connection tasks to be destroyed pending.
        deadline = time.monotonic() + 60
        while sim.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.1)


def _server(tmp_path: Path, database_url: str, endpoint: str, buckets: str) -> ServerThread:
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_S3_ENDPOINT_URL=endpoint,
        DEPOT_REFERENCE_BUCKETS=buckets,
        DEPOT_RESOLVE_GRACE_S=str(GRACE_S),
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    return srv


@pytest.fixture
def server(tmp_path: Path, database_url: str, sim: s3sim.SimulatorThread) -> Iterator[ServerThread]:
    srv = _server(tmp_path, database_url, sim.endpoint_url, "bk")
    yield srv
    srv.stop()


@pytest.fixture
def stub(server: ServerThread) -> Iterator[manifest_pb2_grpc.ManifestServiceStub]:
    with grpc.insecure_channel(server.address) as ch:
        yield manifest_pb2_grpc.ManifestServiceStub(ch)


def _auth(server: ServerThread) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {server.admin_key}"),)


def _request(request_id: str, *refs: mpb.Reference) -> mpb.ResolveReferencesRequest:
    refs = refs or (mpb.Reference(uri="s3://bk/flat/"),)
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5", references=refs)
    return mpb.ResolveReferencesRequest(header=header, request_id=request_id)


def _resolve(stub, server, request) -> tuple[list[mpb.ResolveProgress], mpb.ResolveProgress]:
    messages = list(stub.ResolveReferences(request, metadata=_auth(server), timeout=120))
    assert messages and messages[-1].HasField("manifest")
    assert not any(m.HasField("manifest") for m in messages[:-1])
    return messages[:-1], messages[-1]


def _untimed(ref: common_pb2.ManifestRef) -> common_pb2.ManifestRef:
    out = common_pb2.ManifestRef()
    out.CopyFrom(ref)
    out.ClearField("token")
    out.ClearField("create_time_unix_ms")
    return out


def _code(fn) -> tuple[grpc.StatusCode, str]:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


def test_listing_reports_progress_then_the_stored_manifest(stub, server, sim) -> None:
    progress, last = _resolve(stub, server, _request("first"))
    assert progress, "a listing of seconds sends progress before its result"
    counts = [m.objects_listed for m in progress] + [last.objects_listed]
    assert counts == sorted(counts) and last.objects_listed == OBJECTS
    assert last.manifest.file_count == OBJECTS and last.bytes_listed == last.manifest.size
    # The stored manifest is usable as is: PutManifest including it reuses it.
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=[last.manifest.manifest_id])
    again = stub.PutManifest(mpb.PutManifestRequest(header=header), metadata=_auth(server))
    assert again.manifest_id == last.manifest.manifest_id and again.digest == last.manifest.digest


def test_reattach_after_a_dropped_stream_lists_once(stub, server, sim) -> None:
    _, full = _resolve(stub, server, _request("baseline"))
    one_listing = sim.stats.requests
    call = stub.ResolveReferences(_request("dropped"), metadata=_auth(server), timeout=120)
    first = next(call)
    assert not first.HasField("manifest")
    call.cancel()  # the client goes away mid-listing
    _, resumed = _resolve(stub, server, _request("dropped"))
    # The same manifest; its token differs by the build's signed time.
    assert _untimed(resumed.manifest) == _untimed(full.manifest)
    # One more listing's worth of requests, not two (the plan can differ by a probe or so).
    second = sim.stats.requests - one_listing
    assert second < 1.5 * one_listing
    # A finished operation answers at once from its kept result.
    before = sim.stats.requests
    _, kept = _resolve(stub, server, _request("dropped"))
    assert kept.manifest == resumed.manifest and sim.stats.requests == before


def test_nobody_attached_for_the_grace_cancels_the_listing(stub, server, sim) -> None:
    sim.config.latency_ms = 150.0  # a full listing: 50+ pages, 7 s or more
    call = stub.ResolveReferences(_request("abandoned"), metadata=_auth(server), timeout=120)
    next(call)
    call.cancel()
    time.sleep(GRACE_S + 1.5)  # the grace, then any request already in flight
    stopped = sim.stats.requests
    time.sleep(1.0)
    assert sim.stats.requests == stopped, "the S3 listing went on after it was cancelled"
    assert stopped < OBJECTS // 1000, "the listing ran to its end (one page per 1000 objects)"


def test_same_request_id_with_another_header_is_refused(stub, server) -> None:
    call = stub.ResolveReferences(_request("taken"), metadata=_auth(server), timeout=120)
    next(call)
    other = _request("taken", mpb.Reference(uri="s3://bk/flat/", name="other"))
    code, message = _code(lambda: list(stub.ResolveReferences(other, metadata=_auth(server), timeout=30)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in message
    call.cancel()
    bad = _code(lambda: list(stub.ResolveReferences(_request("no spaces"), metadata=_auth(server), timeout=30)))
    assert bad[0] == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in bad[1]


def test_an_empty_prefix_is_refused_unless_allowed(stub, server) -> None:
    code, message = _code(lambda: _resolve(stub, server, _request("typo", mpb.Reference(uri="s3://bk/nope/"))))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no objects under s3://bk/nope/; check the prefix" in message
    # The same through CreateManifest's references.
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5", references=[mpb.Reference(uri="s3://bk/nope")])
    code, message = _code(lambda: stub.PutManifest(mpb.PutManifestRequest(header=header), metadata=_auth(server)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no objects under s3://bk/nope" in message
    _, last = _resolve(stub, server, _request("empty", mpb.Reference(uri="s3://bk/nope/", allow_empty=True)))
    assert last.manifest.file_count == 0


def test_included_manifests_merge_with_streamed_entries(stub, server) -> None:
    _, listed = _resolve(stub, server, _request("merge", mpb.Reference(uri="s3://bk/flat/", name="listed")))
    header = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=[listed.manifest.manifest_id])
    extra = mpb.ManifestEntry(path="zz/readme", algorithm="md5", digest="1B2M2Y8AsgTpgAmY7PhCfg==", size=0, content=b"")
    merged = stub.PutManifest(mpb.PutManifestRequest(header=header, entries=[extra]), metadata=_auth(server))
    assert merged.file_count == OBJECTS + 1 and merged.manifest_id != listed.manifest.manifest_id
    missing = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=["ab" * 32])
    code, message = _code(lambda: stub.PutManifest(mpb.PutManifestRequest(header=missing), metadata=_auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND, message
    bad = mpb.ManifestHeader(entity="team", digest_algorithm="md5", include_manifests=["../x"])
    code, message = _code(lambda: stub.PutManifest(mpb.PutManifestRequest(header=bad), metadata=_auth(server)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message


def test_a_caller_without_write_may_not_resolve(server, stub) -> None:
    code, _ = _code(lambda: list(stub.ResolveReferences(_request("anon"), metadata=(), timeout=30)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("key", ["bad//double", "bad/./dot", "bad/../up", "bad/tab\there"])
def test_bad_keys_are_refused_by_the_native_pass_naming_the_key(
    tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str, key: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for k in ["bad/a", key, "bad/z"]:
        s3.put_object(Bucket=s3_bucket, Key=k, Body=b"x")
    srv = _server(tmp_path, database_url, s3_endpoint, s3_bucket)
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = manifest_pb2_grpc.ManifestServiceStub(ch)
            request = _request("bad", mpb.Reference(uri=f"s3://{s3_bucket}/bad/"))
            code, message = _code(lambda: _resolve(stub, srv, request))
    finally:
        srv.stop()
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert repr(key[len("bad/") :]) in message and f"s3://{s3_bucket}/bad/" in message
