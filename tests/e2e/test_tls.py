"""TLS everywhere (issue 8, item 13): servers, the SDK, and the services' own calls.

Certificates come from a throwaway CA made here by trustme. The servers are
the real ones: the all-in-one through support.servers' ServerThread, the
split services wired as their ``__main__`` wires them, and ``depot server``
as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.servers import ServerThread, make_config

import depot
from depot.metadata.v1 import metadata_pb2 as pb
from depot.metadata.v1 import metadata_pb2_grpc
from depot.services.allinone.config import AllInOneConfig
from depot.services.common import serving, tls
from depot.services.manifest.config import ManifestConfig
from depot.services.manifest.server import GATES, add_manifest
from depot.services.manifest.store import open_store
from depot.services.metadata import db
from depot.services.metadata.access import Access
from depot.services.metadata.config import MetadataConfig
from depot.services.metadata.server import Metadata

TLS_ENV = (
    "DEPOT_TLS_CA",
    "DEPOT_TLS_CLIENT_CERT",
    "DEPOT_TLS_CLIENT_KEY",
    "DEPOT_TLS_SERVER_NAME",
    "DEPOT_INSECURE",
    "DEPOT_ADDRESS",
    "DEPOT_MANIFEST_ADDRESS",
)


@dataclass
class Pki:
    """PEM files of a CA, a server certificate it signed (localhost, 127.0.0.1)
    and a client certificate it signed."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def write_pki(ca: trustme.CA, directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("depot-client@example.com")
    pki = Pki(*(directory / n for n in ("ca.pem", "cert.pem", "key.pem", "client.pem", "client-key.pem")))
    ca.cert_pem.write_to_path(str(pki.ca))
    server.private_key_pem.write_to_path(str(pki.key))
    client.private_key_pem.write_to_path(str(pki.client_key))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(pki.cert), append=True)
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(pki.client_cert), append=True)
    return pki


@pytest.fixture(autouse=True)
def _clean_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's shell must not decide what these tests connect with.
    for name in TLS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return write_pki(trustme.CA(), tmp_path / "pki")


@pytest.fixture
def other_pki(tmp_path: Path) -> Pki:
    """Certificates from a CA the servers do not trust."""
    return write_pki(trustme.CA(), tmp_path / "other-pki")


def tls_server(tmp_path: Path, database_url: str, pki: Pki, **env: str) -> ServerThread:
    config = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_TLS_CERT=str(pki.cert),
        DEPOT_TLS_KEY=str(pki.key),
        DEPOT_TLS_CA=str(pki.ca),
        **env,
    )
    return ServerThread(config).start()


@pytest.fixture
def server_tls(tmp_path: Path, database_url: str, pki: Pki) -> Iterator[ServerThread]:
    srv = tls_server(tmp_path, database_url, pki)
    yield srv
    srv.stop()


@pytest.fixture
def server_mtls(tmp_path: Path, database_url: str, pki: Pki) -> Iterator[ServerThread]:
    srv = tls_server(tmp_path, database_url, pki, DEPOT_TLS_CLIENT_CA=str(pki.ca))
    yield srv
    srv.stop()


def health(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def log_and_download(address: str, key: str, out: Path, **kwargs: object) -> str:
    """A real artifact log and download through the SDK: the manifest service
    checks access with metadata on every upload, so this also exercises the
    server's internal calls."""
    with depot.init(project="p", address=address, api_key=key, **kwargs) as run:  # type: ignore[arg-type]
        art = depot.Artifact("secret-data", type="dataset")
        with art.new_file("x.txt") as f:
            f.write("sent over TLS")
        run.log_artifact(art).wait()
    api = depot.Api(address, key, **kwargs)  # type: ignore[arg-type]
    got = api.artifact("admin/p/secret-data:latest").download(out)
    return (got / "x.txt").read_text()


# --------------------------------------------------------------------------
# Server TLS: who can connect
# --------------------------------------------------------------------------


def test_client_without_the_ca_fails_the_handshake(server_tls: ServerThread) -> None:
    # grpc's default roots do not include the test CA.
    with grpc.secure_channel(server_tls.address, grpc.ssl_channel_credentials()) as ch:
        with pytest.raises(grpc.RpcError) as e:
            health(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

    client = depot.Client(f"grpcs://{server_tls.address}", server_tls.admin_key, retries=0)
    with pytest.raises(depot.CommError):
        client.call(client.access.GetCaller, pb.GetCallerRequest())
    client.close()


def test_client_with_the_ca_succeeds(server_tls: ServerThread, pki: Pki) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    with grpc.secure_channel(server_tls.address, creds) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING

    client = depot.Client(f"grpcs://{server_tls.address}", server_tls.admin_key, tls_ca=pki.ca, retries=0)
    assert client.call(client.access.GetCaller, pb.GetCallerRequest()).user == "admin"
    client.close()


def test_plaintext_client_cannot_talk_to_a_tls_server(server_tls: ServerThread) -> None:
    client = depot.Client(server_tls.address, server_tls.admin_key, retries=0)
    with pytest.raises(depot.CommError):
        client.call(client.access.GetCaller, pb.GetCallerRequest())
    client.close()


def test_grpcs_address_with_depot_tls_ca_logs_and_downloads(
    server_tls: ServerThread, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPOT_TLS_CA", str(pki.ca))
    assert log_and_download(f"grpcs://{server_tls.address}", server_tls.admin_key, tmp_path / "out") == "sent over TLS"


def test_a_bare_address_uses_tls_when_a_ca_is_configured(
    server_tls: ServerThread, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPOT_TLS_CA", str(pki.ca))
    client = depot.Client(server_tls.address, server_tls.admin_key, retries=0)
    assert client.call(client.access.GetCaller, pb.GetCallerRequest()).user == "admin"
    client.close()


def test_tls_flag_and_scheme_must_agree(pki: Pki) -> None:
    with pytest.raises(depot.InvalidArgumentError):
        depot.Client("grpcs://127.0.0.1:1", "k", tls=False)
    with pytest.raises(depot.InvalidArgumentError):
        depot.Client("https://127.0.0.1:1", "k")


def test_missing_ca_file_is_a_clear_sdk_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOT_TLS_CA", str(tmp_path / "nope.pem"))
    with pytest.raises(depot.InvalidArgumentError, match="DEPOT_TLS_CA"):
        depot.Client("grpcs://127.0.0.1:1", "k")


# --------------------------------------------------------------------------
# Mutual TLS
# --------------------------------------------------------------------------


def test_mtls_rejects_a_client_without_a_certificate(server_mtls: ServerThread, pki: Pki) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    with grpc.secure_channel(server_mtls.address, creds) as ch:
        with pytest.raises(grpc.RpcError) as e:
            health(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mtls_rejects_a_certificate_from_another_ca(server_mtls: ServerThread, pki: Pki, other_pki: Pki) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=other_pki.client_key.read_bytes(),
        certificate_chain=other_pki.client_cert.read_bytes(),
    )
    with grpc.secure_channel(server_mtls.address, creds) as ch:
        with pytest.raises(grpc.RpcError) as e:
            health(ch)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mtls_accepts_a_client_certificate_and_serves_the_sdk(
    server_mtls: ServerThread, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    with grpc.secure_channel(server_mtls.address, creds) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
    # The SDK takes its client certificate from the environment; the
    # server's own manifest→metadata calls present the server's certificate.
    monkeypatch.setenv("DEPOT_TLS_CA", str(pki.ca))
    monkeypatch.setenv("DEPOT_TLS_CLIENT_CERT", str(pki.client_cert))
    monkeypatch.setenv("DEPOT_TLS_CLIENT_KEY", str(pki.client_key))
    address = f"grpcs://{server_mtls.address}"
    assert log_and_download(address, server_mtls.admin_key, tmp_path / "out") == "sent over TLS"


# --------------------------------------------------------------------------
# Plaintext only when it is safe or explicitly chosen
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["10.1.2.3:50051", "grpc://10.1.2.3:50051", "depot.example.com:443", "[2001:db8::1]:50051"]
)
def test_sdk_refuses_plaintext_to_a_remote_host(address: str) -> None:
    with pytest.raises(depot.InvalidArgumentError, match="plaintext") as e:
        depot.Client(address, "a-secret-key")
    assert e.value.field == "address"
    assert "a-secret-key" not in str(e.value)


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "grpc://localhost:50051", "[::1]:50051", "127.0.0.2:1"])
def test_sdk_keeps_plaintext_on_loopback(address: str) -> None:
    depot.Client(address, "k").close()


def test_a_refused_address_fails_before_the_key_is_even_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPOT_API_KEY", raising=False)
    monkeypatch.delenv("DEPOT_API_KEY_FILE", raising=False)
    with pytest.raises(depot.InvalidArgumentError):
        depot.Client("10.1.2.3:50051")


def _non_loopback_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent over UDP connect
        except OSError:
            pytest.skip("no route off loopback on this machine")
        ip: str = s.getsockname()[0]
    if ip.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    return ip


def test_insecure_allows_plaintext_to_a_remote_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    # An all-in-one on all interfaces, reached through this machine's own
    # non-loopback address: as a remote host would be.
    ip = _non_loopback_ip()
    cfg = make_config(tmp_path / "wide-data", database_url, (tmp_path / "wide").as_uri(), DEPOT_LISTEN="0.0.0.0:0")
    wide = ServerThread(cfg).start()
    try:
        address = f"{ip}:{wide.address.rsplit(':', 1)[1]}"
        with pytest.raises(depot.InvalidArgumentError):
            depot.Client(address, wide.admin_key)
        client = depot.Client(address, wide.admin_key, insecure=True, retries=0)
        assert client.call(client.access.GetCaller, pb.GetCallerRequest()).user == "admin"
        client.close()
        monkeypatch.setenv("DEPOT_INSECURE", "1")
        client = depot.Client(address, wide.admin_key, retries=0)
        assert client.call(client.access.GetCaller, pb.GetCallerRequest()).user == "admin"
        client.close()
    finally:
        wide.stop()


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"DEPOT_DATA_DIR": str(tmp_path / "data"), **values}


def test_missing_files_are_one_line_errors_naming_the_variable(tmp_path: Path, pki: Pki) -> None:
    missing = str(tmp_path / "missing.pem")
    cases = {
        "DEPOT_TLS_CERT": {"DEPOT_TLS_CERT": missing, "DEPOT_TLS_KEY": str(pki.key)},
        "DEPOT_TLS_KEY": {"DEPOT_TLS_CERT": str(pki.cert), "DEPOT_TLS_KEY": missing},
        "DEPOT_TLS_CLIENT_CA": {
            "DEPOT_TLS_CERT": str(pki.cert),
            "DEPOT_TLS_KEY": str(pki.key),
            "DEPOT_TLS_CLIENT_CA": missing,
        },
        "DEPOT_TLS_CA": {"DEPOT_TLS_CA": missing},
        "DEPOT_TLS_CLIENT_CERT": {"DEPOT_TLS_CLIENT_CERT": missing, "DEPOT_TLS_CLIENT_KEY": str(pki.key)},
    }
    for variable, values in cases.items():
        with pytest.raises(ValueError, match=f"^{variable}: cannot read") as e:
            AllInOneConfig.from_env(_env(tmp_path, **values))
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="DEPOT_TLS_KEY is required"):
        AllInOneConfig.from_env(_env(tmp_path, DEPOT_TLS_CERT=str(pki.cert)))
    with pytest.raises(ValueError, match="not a PEM file"):
        (tmp_path / "junk").write_text("junk")
        AllInOneConfig.from_env(_env(tmp_path, DEPOT_TLS_CERT=str(tmp_path / "junk"), DEPOT_TLS_KEY=str(pki.key)))


def test_config_reads_the_files_once_and_hands_them_to_workers(tmp_path: Path, pki: Pki) -> None:
    env = _env(
        tmp_path,
        DEPOT_TLS_CERT=str(pki.cert),
        DEPOT_TLS_KEY=str(pki.key),
        DEPOT_TLS_CLIENT_CA=str(pki.ca),
        DEPOT_TLS_CA=str(pki.ca),
        DEPOT_TLS_SERVER_NAME="depot.internal",
        DEPOT_HEALTH_LISTEN="0.0.0.0:8081",
    )
    config = AllInOneConfig.from_env(env)
    server, client_tls = config.server, config.manifest.client_tls
    assert server.tls is not None and server.tls.cert_chain == pki.cert.read_bytes()
    assert server.tls.client_ca == pki.ca.read_bytes()
    assert client_tls is not None and client_tls.server_name == "depot.internal"
    # Workers rebuild the configuration from to_env() (the secret comes on their stdin).
    again = AllInOneConfig.from_env(config.to_env())
    assert (again.server.tls, again.manifest.client_tls, again.server.health_listen) == (
        server.tls,
        client_tls,
        "0.0.0.0:8081",
    )
    assert "PRIVATE KEY" not in repr(config)


def test_depot_server_rejects_a_missing_certificate_in_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, DEPOT_DATA_DIR=str(tmp_path / "data"), DEPOT_LISTEN="127.0.0.1:0")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "depot",
            "server",
            "--tls-cert",
            str(tmp_path / "c.pem"),
            "--tls-key",
            str(tmp_path / "k.pem"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    missing = str(tmp_path / "c.pem")
    assert result.stderr.strip().splitlines() == [
        f"depot: error: DEPOT_TLS_CERT: cannot read certificate chain {missing!r}: No such file or directory"
    ]


# --------------------------------------------------------------------------
# `depot server` over TLS, and the split services' own calls
# --------------------------------------------------------------------------


def test_depot_server_serves_tls_with_its_internal_calls(
    tmp_path: Path, pki: Pki, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = dict(
        os.environ,
        DEPOT_DATA_DIR=str(data),
        DEPOT_DATABASE_URL=database_url,
        DEPOT_STORAGE_URL=(tmp_path / "blobs").as_uri(),
        DEPOT_LISTEN="127.0.0.1:0",
    )
    for name in TLS_ENV:
        env.pop(name, None)
    flags = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-ca", str(pki.ca)]
    flags += ["--tls-client-ca", str(pki.ca)]
    with subprocess.Popen(
        [sys.executable, "-m", "depot", "server", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("depot: serving on grpcs://127.0.0.1:"), first + proc.stdout.read()
            address = json.loads((data / "server.json").read_text())["address"]
            key = (data / "admin.key").read_text().strip()
            monkeypatch.setenv("DEPOT_TLS_CA", str(pki.ca))
            monkeypatch.setenv("DEPOT_TLS_CLIENT_CERT", str(pki.client_cert))
            monkeypatch.setenv("DEPOT_TLS_CLIENT_KEY", str(pki.client_key))
            assert log_and_download(f"grpcs://{address}", key, tmp_path / "out") == "sent over TLS"
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


class SplitTLS:
    """metadata and manifest on two TLS ports with mutual TLS, wired as their
    ``__main__`` modules wire them from their configs: the manifest service's
    channel to metadata comes from ``tls.internal_channel``."""

    def __init__(self, dsn: str, blobs: Path, env: dict[str, str]):
        self.dsn, self.blobs, self.env = dsn, blobs, env
        self.ports: dict[str, int] = {}
        self.health_port = 0
        self.admin_key = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - surfaced by __enter__
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        pool = await db.create_pool(self.dsn)
        self.admin_key = str(await Access(db.Database(pool)).bootstrap_admin())
        store = await open_store(self.blobs.as_uri())
        meta_config = MetadataConfig.from_env(
            {**self.env, "DEPOT_LISTEN": "127.0.0.1:0", "DEPOT_DATABASE_URL": self.dsn}
        )
        metadata = Metadata(pool, b"s")
        meta = serving.new_server(metadata.callers())
        self.ports["metadata"] = serving.bind(meta, meta_config.server.listen, meta_config.server.tls)
        # The health port is bound by start(); find a free one first.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.health_port = s.getsockname()[1]
        meta_health = await serving.start(meta, metadata.add_to(meta), health_listen=f"127.0.0.1:{self.health_port}")
        man_config = ManifestConfig.from_env(
            {
                **self.env,
                "DEPOT_LISTEN": "127.0.0.1:0",
                "DEPOT_METADATA_ADDRESS": f"localhost:{self.ports['metadata']}",
            }
        )
        channel = tls.internal_channel(
            man_config.metadata_address, man_config.settings.client_tls, man_config.server.tls
        )
        man = serving.new_server(GATES)
        self.ports["manifest"] = serving.bind(man, man_config.server.listen, man_config.server.tls)
        await serving.start(man, [add_manifest(man, store, channel, b"s")])
        self._ready.set()
        await self._stop.wait()
        await serving.stop(meta, meta_health, 1)
        await man.stop(1)
        await channel.close()
        await store.aclose()
        await pool.close()

    def __enter__(self) -> SplitTLS:
        self._thread.start()
        assert self._ready.wait(30)
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


def test_split_services_call_each_other_over_mutual_tls(
    database_url: str, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "DEPOT_DATA_DIR": str(tmp_path / "data"),
        "DEPOT_INTERNAL_SECRET": "s",
        "DEPOT_TLS_CERT": str(pki.cert),
        "DEPOT_TLS_KEY": str(pki.key),
        "DEPOT_TLS_CLIENT_CA": str(pki.ca),
        "DEPOT_TLS_CA": str(pki.ca),
    }
    with SplitTLS(database_url, tmp_path / "blobs", env) as split:
        monkeypatch.setenv("DEPOT_TLS_CA", str(pki.ca))
        monkeypatch.setenv("DEPOT_TLS_CLIENT_CERT", str(pki.client_cert))
        monkeypatch.setenv("DEPOT_TLS_CLIENT_KEY", str(pki.client_key))
        monkeypatch.setenv("DEPOT_MANIFEST_ADDRESS", f"grpcs://localhost:{split.ports['manifest']}")
        address = f"grpcs://localhost:{split.ports['metadata']}"
        assert log_and_download(address, split.admin_key, tmp_path / "out") == "sent over TLS"

        # Kubernetes' grpc probes speak plaintext: the health port answers
        # them, and serves nothing else.
        with grpc.insecure_channel(f"127.0.0.1:{split.health_port}") as ch:
            assert health(ch) == health_pb2.HealthCheckResponse.SERVING
            stub = metadata_pb2_grpc.AccessServiceStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                stub.GetCaller(
                    pb.GetCallerRequest(), metadata=(("authorization", f"Bearer {split.admin_key}"),), timeout=5
                )
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_all_in_one_without_a_usable_ca_fails_at_start(
    tmp_path: Path, database_url: str, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from depot.services.allinone import app

    # A CA that did not sign the server's certificate: the internal channel
    # cannot verify it, which must stop the start rather than fail uploads.
    other = write_pki(trustme.CA(), tmp_path / "unrelated")
    monkeypatch.setattr(app, "INTERNAL_CHECK_S", 2.0)
    with pytest.raises(RuntimeError, match="DEPOT_TLS_CA"):
        config = make_config(
            tmp_path / "depot-data",
            database_url,
            (tmp_path / "blobs").as_uri(),
            DEPOT_TLS_CERT=str(pki.cert),
            DEPOT_TLS_KEY=str(pki.key),
            DEPOT_TLS_CA=str(other.ca),
        )
        ServerThread(config).start()
