"""The S3 listing session honours HTTPS_PROXY / NO_PROXY and AWS_CA_BUNDLE, as botocore does.

Real parts on loopback: the S3 simulator (bench/s3sim.py) behind a TLS
front whose certificate comes from a throwaway CA (trustme), and a CONNECT
proxy that counts the tunnels it opens. The client is the manifest
service's own ``S3HttpClient``: its botocore calls and its aiohttp listing
session must both go through the proxy and trust exactly the configured CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from s3sim import Simulator

from depot.services.common.errors import FailedPrecondition
from depot.services.manifest._s3_http import S3Config, S3HttpClient

BUCKET = "refs"
_PROXY_VARS = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback; ``tunnels`` lists each CONNECT's target."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)


@contextlib.asynccontextmanager
async def _serving(handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture
async def tls_s3(tmp_path: Path) -> AsyncIterator[tuple[str, Path, Simulator]]:
    """(https endpoint, PEM of the CA that signed its certificate, the simulator)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    async with Simulator(objects=50) as sim:
        sim_port = int(sim.endpoint_url.rsplit(":", 1)[1])

        async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _splice((reader, writer), await asyncio.open_connection("127.0.0.1", sim_port))

        async with _serving(front, server_context) as port:
            yield f"https://127.0.0.1:{port}", ca_pem, sim


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    p = ConnectProxy()
    async with _serving(p._serve) as port:
        p.url = f"http://127.0.0.1:{port}"
        yield p


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*_PROXY_VARS, "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _config(endpoint: str) -> S3Config:
    return S3Config(
        endpoint_url=endpoint,
        region="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
        max_attempts=2,
        stall_timeout=5,
    )


async def test_listing_and_botocore_calls_go_through_https_proxy(
    tls_s3: tuple[str, Path, Simulator], proxy: ConnectProxy, clean_env: pytest.MonkeyPatch
) -> None:
    endpoint, ca_pem, sim = tls_s3
    clean_env.setenv("AWS_CA_BUNDLE", str(ca_pem))
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    target = endpoint.removeprefix("https://")
    async with S3HttpClient(_config(endpoint), BUCKET) as client:
        page, body = await client.list_page("", versioned=False)
        assert body.startswith(b"<?xml") and sim.stats.list_pages == 1
        assert proxy.tunnels == [target]  # the listing session's connection
        assert await client.bucket_versioned() is False
        assert proxy.tunnels == [target]  # a signed GET on the same session: its tunnel again
        assert await client.head_object("no-such-key", None) is None
        assert proxy.tunnels == [target, target]  # ...and botocore's own connection


async def test_no_proxy_bypasses_the_proxy(
    tls_s3: tuple[str, Path, Simulator], proxy: ConnectProxy, clean_env: pytest.MonkeyPatch
) -> None:
    endpoint, ca_pem, sim = tls_s3
    clean_env.setenv("AWS_CA_BUNDLE", str(ca_pem))
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    async with S3HttpClient(_config(endpoint), BUCKET) as client:
        await client.list_page("", versioned=False)
        await client.bucket_versioned()
    assert proxy.tunnels == []
    assert sim.stats.list_pages == 1


async def test_the_right_ca_bundle_is_trusted_without_a_proxy(
    tls_s3: tuple[str, Path, Simulator], clean_env: pytest.MonkeyPatch
) -> None:
    endpoint, ca_pem, sim = tls_s3
    clean_env.setenv("AWS_CA_BUNDLE", str(ca_pem))
    async with S3HttpClient(_config(endpoint), BUCKET) as client:
        await client.list_page("", versioned=False)
        assert await client.head_object("no-such-key", None) is None
    assert sim.stats.list_pages == 1


@pytest.mark.parametrize("bundle", ["another CA", "none (the system store)"])
async def test_an_untrusted_certificate_fails_at_once_with_a_clear_error(
    tls_s3: tuple[str, Path, Simulator], clean_env: pytest.MonkeyPatch, tmp_path: Path, bundle: str
) -> None:
    endpoint, _, sim = tls_s3
    if bundle == "another CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        clean_env.setenv("AWS_CA_BUNDLE", str(other))
    async with S3HttpClient(_config(endpoint), BUCKET) as client:
        with pytest.raises(FailedPrecondition, match="TLS certificate is not trusted.*AWS_CA_BUNDLE"):
            await client.list_page("", versioned=False)
        with pytest.raises(FailedPrecondition, match="TLS certificate is not trusted"):
            await client.bucket_versioned()
        with pytest.raises(FailedPrecondition, match="TLS certificate is not trusted"):
            await client.head_object("key", None)  # botocore's connection
        assert client.retries == 0  # not retried: no retry makes a certificate trusted
    assert sim.stats.requests == 0


async def test_an_unreadable_ca_bundle_is_named(
    tls_s3: tuple[str, Path, Simulator], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    endpoint, _, _ = tls_s3
    garbage = tmp_path / "not-a-bundle.pem"
    garbage.write_text("this is not PEM\n")
    clean_env.setenv("AWS_CA_BUNDLE", str(garbage))
    with pytest.raises(FailedPrecondition, match=f"CA bundle {garbage}"):
        async with S3HttpClient(_config(endpoint), BUCKET):
            pass
