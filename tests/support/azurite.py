"""Azurite (Microsoft's Azure Storage emulator) on loopback, and a tiny blob client for tests.

``scripts/test.sh`` (the README's test command) installs Azurite with npm (idempotent, quick when present) into
``<repo>/.cache/azurite``; a test that needs it and cannot find it fails
with the command that installs it (never skips).

The client signs with Depot's own Shared Key code; Azurite checks every
signature, so a signing bug fails these tests rather than hiding in them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

from depot.core.azure_blob import AzureAccess

REPO = Path(__file__).resolve().parents[2]
AZURITE_DIR = REPO / ".cache" / "azurite"
INSTALL = f"npm install --prefix {AZURITE_DIR} azurite@3"
# Azurite's documented development account (public, in Microsoft's docs).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> Path:
    found = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if found.exists():
        return found
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(f"Azurite is not installed; `{INSTALL}` installs it (.ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Azurite:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1

    def connection_string(self, key: str = KEY) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={self.endpoint};"

    def access(self, key: str = KEY) -> AzureAccess:
        return AzureAccess.from_connection_string(self.connection_string(key))

    def request(
        self,
        method: str,
        container: str,
        name: str = "",
        query: dict[str, str] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        **h: str,
    ) -> tuple[int, dict[str, str], bytes]:
        acc = self.access()
        url = acc.url(container, name, query)
        extra = {**{k.replace("_", "-"): v for k, v in h.items()}, **(headers or {})}
        if method in ("PUT", "POST"):
            extra["Content-Length"] = str(len(body))
        signed = acc.headers(method, url, formatdate(usegmt=True), extra)
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=signed)
            resp = conn.getresponse()
            # Header names lowercased: Azurite sends some of them so.
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def create_container(self, prefix: str = "c") -> str:
        name = f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        status, _, body = self.request("PUT", name, query={"restype": "container"})
        assert status == 201, (status, body)
        return name

    def put(self, container: str, name: str, data: bytes) -> str:
        """Uploads one block blob; returns its ETag without quotes."""
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        status, headers, body = self.request(
            "PUT", container, name, body=data, x_ms_blob_type="BlockBlob", Content_MD5=md5
        )
        assert status == 201, (status, body)
        return headers["etag"].strip('"')


@contextlib.contextmanager
def running_azurite(workdir: Path) -> Iterator[Azurite]:
    """Azurite's blob service on a free loopback port, its data in ``workdir``; stopped on exit."""
    binary = azurite_binary()
    port = _free_port()
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workdir),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Azurite exited ({proc.returncode}): {(workdir / 'azurite.log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Azurite did not listen within 60 s")
            time.sleep(0.1)
        yield Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
