"""Fixtures for the S3 reference tests: a moto server and the scale simulator, both on loopback."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from depot.services.manifest.s3_listing import S3Config

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

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
