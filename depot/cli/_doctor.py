"""``depot doctor``: what stands between this machine and a working Depot, one line per check.

The checks run in the order a call needs them, and a failed one skips those
that depend on it (no point testing the key when nothing answers):

- ``config``: the connection settings (DEPOT_ADDRESS, DEPOT_API_KEY, TLS ...);
- ``connect``: a TCP connection to each address;
- ``tls``: the gRPC handshake (``grpc.health.v1``, which needs no key): a
  certificate not trusted, or plaintext against a TLS port, shows here;
- ``auth``: the metadata service accepts the API key (GetCaller);
- ``database``: the metadata service answers a query (ListApiKeys);
- ``storage``: the manifest service stores and reads back a small probe
  blob in the caller's own entity (content-addressed: the same bytes every
  time, swept by the GC like any unreferenced blob);
- ``reference``: for each ``--reference URI``, the server may list it (the
  bucket is allowed by DEPOT_REFERENCE_BUCKETS and readable with the
  server's credentials); at most 1000 objects are listed.

Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass

import grpc
import xxhash

from depot._client import Client
from depot._config import ConnectionConfig
from depot._exceptions import DepotError, ResourceExhaustedError, UnauthenticatedError
from depot._resolve import resolve_references
from depot._tls import Target
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

from ._args import Actions

# What the storage check writes: the same bytes every run, so one blob at most.
PROBE = b"depot doctor storage probe\n"
# A reference check lists at most this many objects; more is still "reachable".
REFERENCE_PROBE_OBJECTS = 1000
_TIMEOUT_S = 10.0
# grpc.health.v1 by hand: the lean SDK install has no grpcio-health-checking.
# The request (HealthCheckRequest) is empty; the answer is field 1, an enum
# varint, and SERVING is 1.
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = b"\x08\x01"


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped, because a check it depends on failed
    detail: str


def register(sub: Actions) -> None:
    help = "check connectivity, TLS, the API key, the database, storage and reference buckets"
    p = sub.add_parser("doctor", help=help, description=help)
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="URI",
        help="also check that the server may list this reference (s3://bucket/prefix, ...); repeatable",
    )
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON object per check")
    p.set_defaults(func=doctor)


def doctor(opts: argparse.Namespace) -> int:
    checks = run_checks(opts.reference)
    for c in checks:
        if opts.json:
            print(json.dumps(asdict(c)))
        else:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[c.ok]
            print(f"{mark} {c.name}: {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


def run_checks(references: list[str]) -> list[Check]:
    checks: list[Check] = []
    try:
        config = ConnectionConfig.from_env(os.environ, retries=0, call_timeout=_TIMEOUT_S)
    except DepotError as e:
        return [Check("config", False, str(e))]
    checks.append(Check("config", True, f"metadata {config.address}, manifest {config.manifest_address}"))
    targets = {"metadata": config.metadata_target}
    if config.manifest_address != config.address:
        targets["manifest"] = config.manifest_target
    reachable = all([_connect(name, t.address, checks) for name, t in targets.items()])
    if reachable:
        reachable = all([_handshake(name, t, checks) for name, t in targets.items()])
    client = Client(config=config) if reachable else None
    try:
        user, rejected = _auth(client, checks)
        # A key that was not even checked (metadata failing) still lets the
        # database check say why; a rejected key would only fail it again.
        _database(None if rejected else client, checks)
        _storage(client, user, checks)
        for uri in references:
            _reference(client, user, uri, checks)
    finally:
        if client is not None:
            client.close()
    return checks


def _skip(name: str, why: str) -> Check:
    return Check(name, None, f"not checked: {why}")


def _connect(name: str, address: str, checks: list[Check]) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        checks.append(Check(f"connect {name}", False, f"cannot connect to {address}: {e}"))
        return False
    checks.append(Check(f"connect {name}", True, f"{address} accepts connections"))
    return True


def _handshake(name: str, target: Target, checks: list[Check]) -> bool:
    tls = target.credentials is not None
    with target.channel([]) as channel:
        try:
            check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                _HEALTH_CHECK
            )  # no (de)serializer: bytes
            answer: bytes = check(b"", timeout=_TIMEOUT_S)
        except grpc.RpcError as e:
            detail = str(e.details() if isinstance(e, grpc.Call) else e)
            if tls:
                why = (
                    f"TLS handshake with {target.address} failed ({detail}); is the server's certificate "
                    "signed by DEPOT_TLS_CA (or a system CA) and valid for this host name?"
                )
            else:
                why = (
                    f"no plaintext gRPC answer from {target.address} ({detail}); "
                    "if the server serves TLS, use grpcs:// (and DEPOT_TLS_CA)"
                )
            checks.append(Check(f"tls {name}", False, why))
            return False
    if answer != _SERVING:
        checks.append(Check(f"tls {name}", False, f"{target.address} answers health {answer.hex()}, not SERVING"))
        return False
    checks.append(Check(f"tls {name}", True, "TLS, certificate verified" if tls else "plaintext (grpc://)"))
    return True


def _call(fn: Callable[[], object]) -> DepotError | None:
    """The error ``fn`` (a Client call, which raises SDK errors only) failed with, or None."""
    try:
        fn()
    except DepotError as e:
        return e
    return None


def _why(e: DepotError) -> str:
    # INTERNAL answers carry no cause on purpose (status.py): it is in the server's log.
    return f"{e} (the cause is in the server's log)" if type(e) is DepotError else str(e)


def _auth(client: Client | None, checks: list[Check]) -> tuple[str, bool]:
    """The caller's user name ("" unless the key was accepted), and whether it was rejected."""
    if client is None:
        checks.append(_skip("auth", "the server is not reachable"))
        return "", False
    try:
        caller = client.call(client.access.GetCaller, pb.GetCallerRequest())
    except UnauthenticatedError as e:
        checks.append(Check("auth", False, f"the API key is not accepted: {e}"))
        return "", True
    except DepotError as e:
        checks.append(Check("auth", False, f"the metadata service could not check the key: {_why(e)}"))
        return "", False
    user = caller.user.rpartition("/")[2]
    checks.append(Check("auth", True, f"API key of {user}" + (" (superuser)" if caller.superuser else "")))
    return user, False


def _database(client: Client | None, checks: list[Check]) -> None:
    if client is None:
        checks.append(_skip("database", "needs a reachable server and an accepted API key"))
        return
    error = _call(lambda: client.call(client.access.ListApiKeys, pb.ListApiKeysRequest(page_size=1)))
    if error is not None:
        checks.append(Check("database", False, f"the metadata service cannot query its database: {_why(error)}"))
        return
    checks.append(Check("database", True, "the metadata service answers queries"))


def _digest() -> mpb.BlobDigest:
    return mpb.BlobDigest(algorithm="xxh3_128", digest=base64.b64encode(xxhash.xxh3_128(PROBE).digest()).decode())


def _storage(client: Client | None, user: str, checks: list[Check]) -> None:
    if client is None or not user:
        checks.append(_skip("storage", "needs an accepted API key"))
        return
    digest = _digest()
    write = mpb.BatchUpdateBlobsRequest(entity=user, blobs=[mpb.BlobData(digest=digest, data=PROBE)])
    error = _call(lambda: client.call(client.manifest.BatchUpdateBlobs, write))
    if error is not None:
        checks.append(Check("storage", False, f"the manifest service cannot store a blob: {_why(error)}"))
        return
    read = mpb.BatchReadBlobsRequest(entity=user, digests=[digest])
    try:
        got = client.call(client.manifest.BatchReadBlobs, read)
    except DepotError as e:
        checks.append(Check("storage", False, f"the manifest service stored a blob but cannot read it back: {_why(e)}"))
        return
    if [b.data for b in got.blobs] != [PROBE]:
        checks.append(Check("storage", False, "the blob read back differs from the one stored"))
        return
    checks.append(Check("storage", True, f"stored and read back a {len(PROBE)}-byte blob"))


def _reference(client: Client | None, user: str, uri: str, checks: list[Check]) -> None:
    name = f"reference {uri}"
    if client is None or not user:
        checks.append(_skip(name, "needs an accepted API key"))
        return
    ref = mpb.Reference(uri=uri, max_objects=REFERENCE_PROBE_OBJECTS, allow_empty=True)
    try:
        resolve_references(client, user, "xxh3_128", [ref])
    except ResourceExhaustedError:
        checks.append(Check(name, True, f"listed (more than {REFERENCE_PROBE_OBJECTS} objects)"))
        return
    except DepotError as e:
        checks.append(Check(name, False, f"the server cannot list it: {_why(e)}"))
        return
    checks.append(Check(name, True, "listed"))
