"""``depot doctor`` against a real all-in-one server, with one thing broken at a time.

Each test breaks one thing for real (nothing listening, a wrong key, TLS
the client does not trust, plaintext against TLS, the database refusing
connections, the blob store unwritable, a bucket the server may not list)
and checks that exactly that line fails, saying what is wrong, and the exit
status is 1; the healthy server passes every line with exit status 0.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import boto3
import pytest
import trustme
from support.servers import ServerThread, free_port, make_config

from depot.cli._main import main

_CLIENT_VARS = ("DEPOT_ADDRESS", "DEPOT_MANIFEST_ADDRESS", "DEPOT_API_KEY", "DEPOT_API_KEY_FILE", "DEPOT_INSECURE")
_TLS_VARS = ("DEPOT_TLS_CA", "DEPOT_TLS_CLIENT_CERT", "DEPOT_TLS_CLIENT_KEY", "DEPOT_TLS_SERVER_NAME")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CLIENT_VARS + _TLS_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ref_server(tmp_path: Path, database_url: str, s3_endpoint: str, s3_bucket: str) -> Iterator[ServerThread]:
    """A server whose blob store is a local directory and which may list ``s3_bucket``."""
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=s3_bucket, Key="data/a.txt", Body=b"a")
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_S3_ENDPOINT_URL=s3_endpoint,
        DEPOT_REFERENCE_BUCKETS=s3_bucket,
    )
    srv = ServerThread(cfg).start()
    yield srv
    srv.stop()


def doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, **env: str
) -> tuple[int, dict[str, tuple[bool | None, str]]]:
    """Exit status and {check name: (ok, detail)} of `depot doctor --json`."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["doctor", "--json", *args])
    out = capsys.readouterr().out
    checks = [json.loads(line) for line in out.splitlines()]
    return code, {c["name"]: (c["ok"], c["detail"]) for c in checks}


def failed(checks: dict[str, tuple[bool | None, str]]) -> list[str]:
    return [name for name, (ok, _) in checks.items() if ok is False]


def test_a_healthy_server_passes_every_check(
    ref_server: ServerThread, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks = doctor(
        monkeypatch,
        capsys,
        "--reference",
        f"s3://{s3_bucket}/data",
        DEPOT_ADDRESS=ref_server.address,
        DEPOT_API_KEY=ref_server.admin_key,
    )
    assert code == 0, checks
    assert list(checks) == [
        "config",
        "connect metadata",
        "tls metadata",
        "auth",
        "database",
        "storage",
        f"reference s3://{s3_bucket}/data",
    ]
    assert all(ok for ok, _ in checks.values())
    assert checks["auth"][1] == "API key of admin (superuser)"
    # The text form: one line per check.
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(line.startswith("ok   ") for line in lines)


def test_nothing_listening(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS=address, DEPOT_API_KEY="dpt_abc_def")
    assert code == 1
    assert failed(checks) == ["connect metadata"]
    assert checks["connect metadata"][1].startswith(f"cannot connect to {address}: ")
    assert {checks[n][0] for n in ("auth", "database", "storage")} == {None}


def test_a_wrong_api_key(
    ref_server: ServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id, _, _ = ref_server.admin_key.removeprefix("dpt_").partition("_")
    code, checks = doctor(
        monkeypatch, capsys, DEPOT_ADDRESS=ref_server.address, DEPOT_API_KEY=f"dpt_{key_id}_not-the-secret"
    )
    assert code == 1
    assert failed(checks) == ["auth"]
    assert checks["auth"][1].startswith("the API key is not accepted")
    assert "not-the-secret" not in json.dumps(checks)  # never echoed


def test_a_bad_setting_is_the_config_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS="http://127.0.0.1:1", DEPOT_API_KEY="dpt_abc_def")
    assert code == 1
    assert list(checks) == ["config"] and "DEPOT_ADDRESS" in checks["config"][1]


@pytest.fixture
def tls_server(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerThread, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_TLS_CERT=str(paths["cert"]),
        DEPOT_TLS_KEY=str(paths["key"]),
    )
    srv = ServerThread(cfg).start()
    yield srv, paths["ca"]
    srv.stop()


def test_tls(
    tls_server: tuple[ServerThread, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    srv, ca = tls_server
    port = srv.address.rpartition(":")[2]
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    key = srv.admin_key

    # A CA that did not sign the server's certificate.
    code, checks = doctor(
        monkeypatch, capsys, DEPOT_ADDRESS=f"grpcs://127.0.0.1:{port}", DEPOT_API_KEY=key, DEPOT_TLS_CA=str(other)
    )
    assert code == 1 and failed(checks) == ["tls metadata"]
    assert "TLS handshake with 127.0.0.1:" in checks["tls metadata"][1] and "DEPOT_TLS_CA" in checks["tls metadata"][1]

    # Plaintext against the TLS port.
    monkeypatch.delenv("DEPOT_TLS_CA")
    code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS=f"grpc://127.0.0.1:{port}")
    assert code == 1 and failed(checks) == ["tls metadata"]
    assert "use grpcs://" in checks["tls metadata"][1]

    # The right CA.
    code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS=f"grpcs://127.0.0.1:{port}", DEPOT_TLS_CA=str(ca))
    assert code == 0, checks
    assert checks["tls metadata"] == (True, "TLS, certificate verified")


def test_the_database_refusing_connections(
    ref_server: ServerThread,
    database_url: str,
    postgres,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = urlsplit(database_url).path.lstrip("/")

    async def cut() -> None:
        conn = await asyncpg.connect(postgres.admin_dsn)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        finally:
            await conn.close()

    async def restore() -> None:
        conn = await asyncpg.connect(postgres.admin_dsn)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        finally:
            await conn.close()

    asyncio.run(cut())
    try:
        code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS=ref_server.address, DEPOT_API_KEY=ref_server.admin_key)
    finally:
        asyncio.run(restore())
    assert code == 1
    assert checks["connect metadata"][0] and checks["tls metadata"][0]
    assert checks["database"][0] is False
    assert checks["database"][1].startswith("the metadata service cannot query its database: ")


def test_storage_that_cannot_be_written(
    ref_server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blobs = tmp_path / "blobs"
    shutil.rmtree(blobs, ignore_errors=True)
    blobs.write_text("a file where the blob directory should be\n")
    code, checks = doctor(monkeypatch, capsys, DEPOT_ADDRESS=ref_server.address, DEPOT_API_KEY=ref_server.admin_key)
    assert code == 1
    assert failed(checks) == ["storage"]
    assert checks["storage"][1].startswith("the manifest service cannot store a blob: ")


def test_a_bucket_the_server_may_not_list(
    ref_server: ServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "s3://not-an-allowed-bucket/data"
    code, checks = doctor(
        monkeypatch, capsys, "--reference", uri, DEPOT_ADDRESS=ref_server.address, DEPOT_API_KEY=ref_server.admin_key
    )
    assert code == 1
    assert failed(checks) == [f"reference {uri}"]
    assert "DEPOT_REFERENCE_BUCKETS" in checks[f"reference {uri}"][1]
