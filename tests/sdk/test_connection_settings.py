"""The SDK's deadlines and address from arguments or environment, each bad value
one error naming the argument or variable it came from; the deadlines reach
the calls of a real server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import xxhash

import depot
from depot._config import ConnectionConfig
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1.metadata_pb2 import GetCallerRequest


def _config(env: dict[str, str], **kw: Any) -> ConnectionConfig:
    return ConnectionConfig.from_env({"DEPOT_API_KEY": "dpt_x_y", **env}, **kw)


def test_deadlines_come_from_the_argument_else_the_variable_else_the_default() -> None:
    cfg = _config({})
    assert (cfg.call_timeout, cfg.stream_timeout) == (60.0, 3600.0)
    cfg = _config({"DEPOT_CALL_TIMEOUT": "2.5", "DEPOT_STREAM_TIMEOUT": "90"})
    assert (cfg.call_timeout, cfg.stream_timeout) == (2.5, 90.0)
    cfg = _config({"DEPOT_CALL_TIMEOUT": "2.5", "DEPOT_STREAM_TIMEOUT": "90"}, call_timeout=7, stream_timeout=8.5)
    assert (cfg.call_timeout, cfg.stream_timeout) == (7.0, 8.5)


@pytest.mark.parametrize(
    ("env", "kw", "source"),
    [
        ({"DEPOT_CALL_TIMEOUT": "soon"}, {}, "DEPOT_CALL_TIMEOUT"),
        ({"DEPOT_CALL_TIMEOUT": "0"}, {}, "DEPOT_CALL_TIMEOUT"),
        ({"DEPOT_CALL_TIMEOUT": "-1"}, {}, "DEPOT_CALL_TIMEOUT"),
        ({"DEPOT_STREAM_TIMEOUT": "inf"}, {}, "DEPOT_STREAM_TIMEOUT"),
        ({"DEPOT_STREAM_TIMEOUT": "nan"}, {}, "DEPOT_STREAM_TIMEOUT"),
        ({}, {"call_timeout": 0}, "call_timeout"),
        ({}, {"stream_timeout": "10"}, "stream_timeout"),
        ({}, {"stream_timeout": True}, "stream_timeout"),
        # Plaintext to another host: the variable the address came from, not "address".
        ({"DEPOT_ADDRESS": "10.1.2.3:50051"}, {}, "DEPOT_ADDRESS"),
        ({"DEPOT_MANIFEST_ADDRESS": "grpc://10.1.2.3:50052"}, {}, "DEPOT_MANIFEST_ADDRESS"),
        ({}, {"address": "10.1.2.3:50051"}, "address"),
    ],
)
def test_a_bad_value_is_one_line_naming_where_it_came_from(
    env: dict[str, str], kw: dict[str, Any], source: str
) -> None:
    with pytest.raises(depot.InvalidArgumentError) as info:
        _config(env, **kw)
    assert info.value.field == source
    assert str(info.value).startswith(f"{source}") and "\n" not in str(info.value)


def test_the_client_takes_the_deadlines_and_refuses_them_beside_a_config() -> None:
    client = depot.Client("127.0.0.1:1", "dpt_x_y", call_timeout=3, stream_timeout=4)
    try:
        assert (client.config.call_timeout, client.config.stream_timeout) == (3.0, 4.0)
        with pytest.raises(depot.InvalidArgumentError, match="not both"):
            depot.Client(config=client.config, call_timeout=3)
    finally:
        client.close()


def test_calls_reach_a_real_server_on_the_default_deadlines(monkeypatch: pytest.MonkeyPatch, server: Any) -> None:
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", server.admin_key)
    digest = base64.b64encode(xxhash.xxh3_128(b"never uploaded").digest()).decode()
    missing = mpb.ReadBlobRequest(entity="team", digest=mpb.BlobDigest(algorithm="xxh3_128", digest=digest))
    # With the defaults both calls reach the server and get its answer.
    client = depot.Client()
    try:
        assert client.call(client.access.GetCaller, GetCallerRequest()).user
        with pytest.raises(depot.NotFoundError):
            client.read(client.manifest.ReadBlob, missing, list)
    finally:
        client.close()
