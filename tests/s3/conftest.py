"""Fixtures for the S3 reference tests: a moto server and the scale simulator, both on loopback."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

_BENCH = str(Path(__file__).resolve().parents[2] / "bench")
if _BENCH not in sys.path:
    sys.path.insert(0, _BENCH)

from depot.native import ManifestReader, ManifestWriter  # noqa: E402
from depot.services.manifest.s3_listing import S3Config, write_s3_reference  # noqa: E402

_bucket_ids = itertools.count()


@pytest.fixture(scope="session")
def s3ref_moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3ref_boto(s3ref_moto_endpoint: str) -> Any:
    """A synchronous boto3 client for arranging test data in moto."""
    return boto3.client(
        "s3",
        endpoint_url=s3ref_moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3ref_bucket(s3ref_boto: Any) -> str:
    name = f"ref-{os.getpid()}-{next(_bucket_ids)}"
    s3ref_boto.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3ref_config(s3ref_moto_endpoint: str) -> S3Config:
    return S3Config(
        endpoint_url=s3ref_moto_endpoint,
        region="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        backoff_base=0.01,
    )


def wandb_digest(pairs: list[tuple[str, str]]) -> str:
    """W&B's manifest-v1 artifact digest, written independently of Depot's code."""
    h = hashlib.md5()
    h.update(b"wandb-artifact-manifest-v1\n")
    for path, digest in sorted(pairs):
        h.update(f"{path}:{digest}\n".encode())
    return h.hexdigest()


async def list_reference(uri: str, config: S3Config, **kw: Any) -> tuple[Any, list[Any], Any]:
    """Runs ``write_s3_reference`` into an in-memory manifest: (summary, entries, stats)."""
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5")
    stats = await write_s3_reference(uri, writer, session_config=config, **kw)
    summary = writer.close()
    buf.seek(0)
    entries = list(ManifestReader(buf))
    return summary, entries, stats
