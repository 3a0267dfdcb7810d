"""Azure answering 503 ServerBusy: retried with backoff, and a dead account fails by name.

A small proxy in front of Azurite answers the first requests with Azure's
throttling reply, then forwards everything.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from support.azurite import ACCOUNT, Azurite

from depot.native import ManifestWriter
from depot.services.common.errors import Unavailable
from depot.services.manifest.azure_listing import AzureConfig, write_azure_reference


@dataclasses.dataclass
class Busy:
    """Answers ``fail`` requests with 503 ServerBusy, then proxies to Azurite."""

    upstream: str  # http://127.0.0.1:<port>
    fail: int
    seen: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen += 1
        if self.seen <= self.fail:
            return web.Response(status=503, headers={"x-ms-error-code": "ServerBusy"}, body=b"")
        # Forwarded as sent: any header added on the way would break the Shared Key signature.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        body = await request.read()
        async with (
            aiohttp.ClientSession(skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding")) as s,
            s.request(request.method, self.upstream + request.path_qs, headers=headers, data=body or None) as r,
        ):
            body = await r.read()
            keep = {k: v for k, v in r.headers.items() if k.lower() in ("etag", "x-ms-error-code", "content-type")}
            return web.Response(status=r.status, headers=keep, body=body)


@pytest.fixture
async def busy(azurite: Azurite) -> AsyncIterator[tuple[Busy, str]]:
    upstream = azurite.endpoint.rsplit("/", 1)[0]
    proxy = Busy(upstream, fail=0)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield proxy, f"http://127.0.0.1:{port}/{ACCOUNT}"
    await runner.cleanup()


def _config(azurite: Azurite, endpoint: str, **kw: object) -> AzureConfig:
    text = azurite.connection_string().replace(azurite.endpoint, endpoint)
    return dataclasses.replace(AzureConfig({ACCOUNT: text}, use_identity=False, backoff_base=0.001), **kw)


async def test_server_busy_is_retried(azurite: Azurite, busy: tuple[Busy, str]) -> None:
    proxy, endpoint = busy
    container = azurite.create_container()
    etags = {n: azurite.put(container, n, n.encode()) for n in ("d/a", "d/b", "d/c")}
    proxy.fail = 4
    writer = ManifestWriter(io.BytesIO(), "md5")
    stats = await write_azure_reference(f"az://{ACCOUNT}/{container}/d", writer, config=_config(azurite, endpoint))
    assert stats.objects == 3 and stats.retries == 4
    assert writer.close().count == len(etags)


async def test_a_dead_account_fails_by_name(azurite: Azurite, busy: tuple[Busy, str]) -> None:
    proxy, endpoint = busy
    container = azurite.create_container()
    proxy.fail = 10**9
    writer = ManifestWriter(io.BytesIO(), "md5")
    with pytest.raises(Unavailable, match="ServerBusy after 3 attempts") as err:
        await write_azure_reference(
            f"az://{ACCOUNT}/{container}/d", writer, config=_config(azurite, endpoint, max_attempts=3)
        )
    assert f"{ACCOUNT}/{container}" in str(err.value)
