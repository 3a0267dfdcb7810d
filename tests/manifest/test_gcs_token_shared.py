"""gs:// listings of one process share one Google token.

Each listing used to build its own credentials and fetch a fresh access
token: an OAuth exchange (or a metadata-server request) per reference, slow
and subject to Google's token-endpoint quotas when a pipeline logs many
small references. Real google-auth with a service-account key whose
``token_uri`` is a loopback stand-in for Google's OAuth endpoint (which
cannot run here); the listings go to fake-gcs-server, which ignores the
token.
"""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.gcs import list_gcs, new_bucket, put

from depot.services.common.errors import PermissionDenied
from depot.services.manifest import gcs_http
from depot.services.manifest.gcs_listing import GCSConfig


@pytest.fixture
async def token_endpoint() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback OAuth token endpoint: its URL and the grant assertions it received."""
    grants: list[str] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assertion = str(form.get("assertion", ""))
        grants.append(assertion)
        header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
        if header.get("kid") == "revoked":
            return web.json_response({"error": "invalid_grant", "error_description": "key revoked"}, status=400)
        return web.json_response({"access_token": f"token-{len(grants)}", "expires_in": 3600, "token_type": "Bearer"})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/token", grants
    finally:
        await runner.cleanup()


def _service_account(path: Path, token_uri: str, key_id: str = "k1") -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "depot-test",
                "private_key_id": key_id,
                "private_key": pem,
                "client_email": "lister@depot-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    path.chmod(0o600)
    return path


async def test_listings_share_one_token(
    gcs_endpoint: str,
    token_endpoint: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, grants = token_endpoint
    # No token left from an earlier test on this loop (loops may be shared between tests).
    monkeypatch.setattr(gcs_http, "_TOKENS", weakref.WeakKeyDictionary())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path / "sa.json", url)))
    bucket = new_bucket(gcs_endpoint)
    put(gcs_endpoint, bucket, "d/a.txt", b"alpha")
    # Not anonymous although the endpoint is the emulator: the token path runs.
    config = GCSConfig(endpoint_url=gcs_endpoint, anonymous=False, backoff_base=0.005, stall_timeout=3.0)
    for _ in range(3):
        summary, entries, _ = await list_gcs(f"gs://{bucket}/d", gcs_endpoint, config=config)
        assert [e.path for e in entries] == ["a.txt"]
    assert len(grants) == 1 and grants[0]  # one signed JWT grant for the three listings


async def test_a_key_that_stopped_working_is_not_kept(
    gcs_endpoint: str,
    token_endpoint: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refresh that fails drops the shared token: the next listing finds the
    credentials again (here a replaced key file) instead of the revoked key."""
    url, grants = token_endpoint
    monkeypatch.setattr(gcs_http, "_TOKENS", weakref.WeakKeyDictionary())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path / "old.json", url, "revoked")))
    bucket = new_bucket(gcs_endpoint)
    put(gcs_endpoint, bucket, "d/a.txt", b"alpha")
    config = GCSConfig(endpoint_url=gcs_endpoint, anonymous=False, backoff_base=0.005, stall_timeout=3.0)
    with pytest.raises(PermissionDenied, match="could not be refreshed"):
        await list_gcs(f"gs://{bucket}/d", gcs_endpoint, config=config)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path / "new.json", url, "k2")))
    _, entries, _ = await list_gcs(f"gs://{bucket}/d", gcs_endpoint, config=config)
    assert [e.path for e in entries] == ["a.txt"]
    assert len(grants) == 2
