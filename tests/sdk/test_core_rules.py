"""depot.core: the rules the SDK and the services share, each side raising its own exception type.

The same bad value gets the same message whichever side checks it; the SDK
raises depot.InvalidArgumentError (a depot.DepotError), the services
InvalidArgument (an INVALID_ARGUMENT status).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import depot
from depot import _rules
from depot._config import ConnectionConfig
from depot.core import addresses, entry_paths, hashing, names
from depot.core.errors import InvalidValue
from depot.metadata.v1.metadata_pb2 import GetCallerRequest
from depot.native import HASH_ALGORITHMS, hash_bytes
from depot.services.common import validate
from depot.services.common.errors import InvalidArgument
from depot.services.metadata import names as service_names

BAD_PATHS = ["", "/abs", "a/../b", "a//b", "./a", "a\0b", "a\nb", "x" * 256, "a\udcff"]


def _message(check: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:
        check(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("path", BAD_PATHS)
def test_an_entry_path_is_refused_alike_by_the_sdk_and_the_services(path: str) -> None:
    sdk_type, sdk_message = _message(_rules.check_entry_path, path, "name")
    service_type, service_message = _message(validate.check_entry_path, path, "name")
    assert issubclass(sdk_type, depot.InvalidArgumentError)
    assert issubclass(service_type, InvalidArgument)
    assert not issubclass(sdk_type, InvalidArgument) and not issubclass(service_type, depot.DepotError)
    assert sdk_message == service_message


@pytest.mark.parametrize("value", ["", "a/b", "..", "x" * 129, "sp ace", "é"])
def test_a_name_is_refused_alike_by_the_sdk_and_the_services(value: str) -> None:
    sdk = _message(_rules.check_name, value, "name", "artifact name")
    service = _message(service_names.check_part, value, "name", "artifact name")
    assert issubclass(sdk[0], depot.InvalidArgumentError) and issubclass(service[0], InvalidArgument)
    assert sdk[1] == service[1]


@pytest.mark.parametrize("text", ['{"a": NaN}', "[" * 100 + "]" * 100, '{"a": "\\u0000"}', "1e999", "[]"])
def test_json_is_refused_alike_by_the_sdk_and_the_services(text: str) -> None:
    sdk = _message(_rules.parse_json, text, "metadata", object_only=True)
    service = _message(validate.parse_json, text, "metadata", object_only=True)
    assert issubclass(sdk[0], depot.InvalidArgumentError) and issubclass(service[0], InvalidArgument)
    assert sdk[1] == service[1]


def test_a_download_checks_only_what_keeps_a_write_inside_the_root(tmp_path: Path) -> None:
    # Versions logged before a rule existed stay downloadable...
    for path in ["a\nb", "x" * 256]:
        assert entry_paths.check_download_path(path) == path
        with pytest.raises(InvalidValue):
            entry_paths.check_entry_path(path)
    # ...but nothing escapes.
    for path in ["", "/abs", "a/../../b", "a//b", "a\0b", "C:/x"]:
        with pytest.raises(InvalidValue):
            entry_paths.check_download_path(path)


def test_reserved_aliases_are_the_servers() -> None:
    for alias in ["latest", "v0", "v12"]:
        with pytest.raises(InvalidValue, match="reserved"):
            names.check_settable_alias(alias)
    # Not vN as the server reads it: an alias like any other.
    for alias in ["v01", "v", "vv1", "staging"]:
        assert names.check_settable_alias(alias) == alias
    assert names.version_index("v7") == 7 and names.version_index("v07") is None


def test_the_one_algorithm_list_is_what_the_native_engine_hashes() -> None:
    assert hashing.ALGORITHMS == tuple(HASH_ALGORITHMS)
    data = b"depot" * 1000
    for algorithm in hashing.ALGORITHMS:
        h = hashing.new_hasher(algorithm)
        h.update(data[:7])
        h.update(data[7:])
        assert h.digest() == hash_bytes(data, (algorithm,))[0]
    with pytest.raises(InvalidValue, match="sha1"):
        hashing.new_hasher("sha1")


def test_flags_are_on_off_or_an_error_naming_the_variable() -> None:
    assert addresses.parse_flag("DEPOT_INSECURE", " Yes ") is True
    assert addresses.parse_flag("DEPOT_INSECURE", "") is False
    assert addresses.parse_flag("DEPOT_INSECURE", "off") is False
    with pytest.raises(InvalidValue, match="DEPOT_INSECURE"):
        addresses.parse_flag("DEPOT_INSECURE", "maybe")


def _config(env: dict[str, str], **kw: Any) -> ConnectionConfig:
    return ConnectionConfig.from_env({"DEPOT_API_KEY": "dpt_x_y", **env}, **kw)


def test_connection_config_defaults() -> None:
    cfg = _config({})
    assert (cfg.address, cfg.manifest_address, cfg.retry_window, cfg.retries) == ("127.0.0.1:50051",) * 2 + (30.0, None)
    assert cfg.metadata_target.credentials is None
    assert "dpt_x_y" not in repr(cfg)
    cfg = _config({"DEPOT_ADDRESS": "grpc://localhost:7", "DEPOT_RETRY_WINDOW": "2.5"}, retries=0)
    assert (cfg.metadata_target.address, cfg.manifest_address, cfg.retry_window, cfg.retries) == (
        "localhost:7",
        "grpc://localhost:7",
        2.5,
        0,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEPOT_RETRY_WINDOW": "soon"}, "DEPOT_RETRY_WINDOW"),
        ({"DEPOT_RETRY_WINDOW": "-1"}, "DEPOT_RETRY_WINDOW"),
        ({"DEPOT_INSECURE": "maybe"}, "DEPOT_INSECURE"),
        ({"DEPOT_API_KEY": "", "DEPOT_API_KEY_FILE": "/nonexistent/key"}, "DEPOT_API_KEY_FILE"),
        ({"DEPOT_ADDRESS": "http://localhost:1"}, "DEPOT_ADDRESS"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(depot.InvalidArgumentError) as info:
        _config(env)
    assert "\n" not in str(info.value)
    assert variable in str(info.value) or variable == info.value.field


def test_a_client_built_from_one_config_talks_to_a_real_server(server: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(server.admin_key + "\n")
    env = {"DEPOT_ADDRESS": server.address, "DEPOT_API_KEY_FILE": str(key_file), "DEPOT_RETRY_WINDOW": "3"}
    cfg = ConnectionConfig.from_env(env)
    client = depot.Client(config=cfg)
    try:
        assert client.config is cfg and client.retry_window == 3.0 and client.address == server.address
        assert client.call(client.access.GetCaller, GetCallerRequest()).user
        with pytest.raises(depot.InvalidArgumentError, match="not both"):
            depot.Client(server.address, config=cfg)
    finally:
        client.close()


def test_a_bad_environment_fails_the_client_in_one_line(monkeypatch: pytest.MonkeyPatch, server: Any) -> None:
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.setenv("DEPOT_API_KEY", server.admin_key)
    monkeypatch.setenv("DEPOT_INSECURE", "maybe")
    with pytest.raises(depot.InvalidArgumentError, match="DEPOT_INSECURE") as info:
        depot.Api()
    assert "\n" not in str(info.value)
