"""Each service's config from its environment: only what it reads, a bad value
is one line naming the variable and the value, and reading writes nothing.

The entry points print that line and exit 2, without a traceback (the last
tests run them as processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from depot.services.allinone.config import AllInOneConfig
from depot.services.common.config import ConfigError, ServerConfig, TelemetryConfig, flag
from depot.services.gc.config import GcConfig
from depot.services.manifest.config import ManifestConfig, ManifestSettings
from depot.services.metadata.config import MetadataConfig, database_url

DSN = "postgresql://depot@db/depot"


def test_each_service_listens_on_its_own_default_port() -> None:
    assert MetadataConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_INTERNAL_SECRET": "s"}).server == ServerConfig(
        "127.0.0.1:50051"
    )
    assert ManifestConfig.from_env({"DEPOT_INTERNAL_SECRET": "s"}).server.listen == "127.0.0.1:50052"
    assert GcConfig.from_env({"DEPOT_DATABASE_URL": DSN}).server.listen == "127.0.0.1:50053"
    assert AllInOneConfig.from_env({}).server.listen == "127.0.0.1:50051"
    env = {"DEPOT_LISTEN": "0.0.0.0:9000", "DEPOT_HEALTH_LISTEN": "0.0.0.0:8081", "DEPOT_DATABASE_URL": DSN}
    assert GcConfig.from_env(env).server == ServerConfig("0.0.0.0:9000", None, "0.0.0.0:8081")


def test_metadata_needs_its_database_and_the_internal_secret() -> None:
    config = MetadataConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_INTERNAL_SECRET": "k"})
    assert (config.database_url, config.internal_secret) == (DSN, b"k")
    with pytest.raises(ConfigError, match="^DEPOT_DATABASE_URL is required$"):
        MetadataConfig.from_env({"DEPOT_INTERNAL_SECRET": "k"})
    with pytest.raises(ConfigError, match="^DEPOT_INTERNAL_SECRET is required$"):
        MetadataConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_INTERNAL_SECRET": ""})
    # migrate and bootstrap-admin read the database URL alone.
    assert database_url({"DEPOT_DATABASE_URL": DSN}) == DSN


def test_gc_reads_its_interval_and_no_secret() -> None:
    assert GcConfig.from_env({"DEPOT_DATABASE_URL": DSN}).gc.interval_s == 3600.0
    assert GcConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_GC_INTERVAL_S": "90"}).gc.interval_s == 90.0
    # 0 turns the schedule off (issue 12): RunNow alone starts passes.
    assert GcConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_GC_INTERVAL_S": "0"}).gc.interval_s == 0.0
    with pytest.raises(ConfigError, match="^DEPOT_DATABASE_URL is required$"):
        GcConfig.from_env({"DEPOT_GC_INTERVAL_S": "90"})


@pytest.mark.parametrize("bad", ["abc", "-5", "nan", "inf", "1e12"])
def test_a_bad_gc_interval_names_the_variable_and_the_value(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        GcConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_GC_INTERVAL_S": bad})
    assert str(e.value) == f"DEPOT_GC_INTERVAL_S must be a positive number of seconds, not {bad!r}"


def test_manifest_settings_defaults_follow_the_data_dir(tmp_path: Path) -> None:
    settings = ManifestSettings.from_env({"DEPOT_DATA_DIR": str(tmp_path), "DEPOT_S3_ENDPOINT_URL": "http://s3:9000"})
    assert settings.storage_url == (tmp_path / "blobs").as_uri()
    assert settings.staging_dir == tmp_path / "staging"
    assert settings.s3.endpoint_url == "http://s3:9000"
    # References list through the store's endpoint unless given their own.
    assert settings.reference_s3_endpoint_url == "http://s3:9000"
    assert (settings.staging_grace_s, settings.upload_idle_timeout_s) == (3600.0, 300.0)
    policy = ManifestSettings.from_env({"DEPOT_REFERENCE_BUCKETS": "a, b"}).reference_policy()
    assert policy.buckets == frozenset({"a", "b"})


def test_manifest_needs_the_internal_secret_and_a_safe_metadata_address() -> None:
    with pytest.raises(ConfigError, match="^DEPOT_INTERNAL_SECRET is required$"):
        ManifestConfig.from_env({})
    with pytest.raises(ConfigError, match="^DEPOT_METADATA_ADDRESS=metadata:50051: refusing"):
        ManifestConfig.from_env({"DEPOT_INTERNAL_SECRET": "s", "DEPOT_METADATA_ADDRESS": "metadata:50051"})
    config = ManifestConfig.from_env({"DEPOT_INTERNAL_SECRET": "s", "DEPOT_METADATA_ADDRESS": "grpc://metadata:1"})
    assert (config.metadata_address, config.internal_secret, config.insecure) == ("grpc://metadata:1", b"s", False)


def test_a_bad_tls_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="^DEPOT_TLS_CA: cannot read CA"):
        ManifestConfig.from_env({"DEPOT_INTERNAL_SECRET": "s", "DEPOT_TLS_CA": str(missing)})
    with pytest.raises(ConfigError, match="^DEPOT_TLS_KEY is required"):
        GcConfig.from_env({"DEPOT_DATABASE_URL": DSN, "DEPOT_TLS_CERT": str(missing)})


@pytest.mark.parametrize(("value", "on"), [("1", True), ("TRUE", True), ("on", True), ("", False), ("0", False)])
def test_flags_read_the_usual_spellings(value: str, on: bool) -> None:
    assert flag({"X": value}, "X") is on
    assert flag({}, "X") is False


@pytest.mark.parametrize("bad", ["ture", "2", "enabled"])
def test_an_unreadable_flag_is_refused_not_read_as_off(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        ManifestConfig.from_env({"DEPOT_INTERNAL_SECRET": "s", "DEPOT_INSECURE": bad})
    assert str(e.value) == f"DEPOT_INSECURE must be 1/true/yes/on or 0/false/no/off, not {bad!r}"


def test_telemetry_settings_are_read_with_the_server_settings() -> None:
    env = {
        "DEPOT_LOG_FORMAT": "JSON",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317",
    }
    telemetry = GcConfig.from_env({"DEPOT_DATABASE_URL": DSN, **env}).server.telemetry
    assert telemetry == TelemetryConfig(traces=("console",), metrics=("otlp",), json_logs=True)
    assert TelemetryConfig.from_env({}) == TelemetryConfig()
    # The all-in-one hands them to its workers with the rest.
    config = AllInOneConfig.from_env(env)
    assert AllInOneConfig.from_env(config.to_env()) == config
    with pytest.raises(ConfigError) as e:
        TelemetryConfig.from_env({"DEPOT_LOG_FORMAT": "xml"})
    assert str(e.value) == "DEPOT_LOG_FORMAT must be text or json, not 'xml'"
    with pytest.raises(ConfigError, match="^OTEL_TRACES_EXPORTER must list otlp, console or none, not 'jaeger'$"):
        TelemetryConfig.from_env({"OTEL_TRACES_EXPORTER": "jaeger"})


@pytest.mark.parametrize("bad", ["-1", "0", "65", "two"])
def test_a_bad_worker_count_names_the_variable_and_the_value(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        AllInOneConfig.from_env({"DEPOT_WORKERS": bad})
    assert str(e.value) == f"DEPOT_WORKERS must be a whole number from 1 to 64, not {bad!r}"


def test_reading_the_all_in_one_config_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = AllInOneConfig.from_env({"DEPOT_DATA_DIR": str(data)})
    # The launcher generates the secret when it starts (app.internal_secret).
    assert config.internal_secret is None and config.database_url is None
    assert not data.exists()
    given = AllInOneConfig.from_env({"DEPOT_DATA_DIR": str(data), "DEPOT_INTERNAL_SECRET": "k"})
    assert given.internal_secret == b"k"
    assert not data.exists()


def _run(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "args", "env", "line"),
    [
        (
            "depot.services.gc",
            ["serve"],
            {"DEPOT_DATABASE_URL": DSN, "DEPOT_GC_INTERVAL_S": "abc"},
            "depot-gc: error: DEPOT_GC_INTERVAL_S must be a positive number of seconds, not 'abc'",
        ),
        (
            "depot.services.metadata",
            ["serve"],
            {"DEPOT_DATABASE_URL": DSN},
            "depot-metadata: error: DEPOT_INTERNAL_SECRET is required",
        ),
        (
            "depot.services.allinone",
            [],
            {"DEPOT_WORKERS": "-1"},
            "depot: error: DEPOT_WORKERS must be a whole number from 1 to 64, not '-1'",
        ),
    ],
)
def test_an_entry_point_prints_one_line_and_exits_2(
    tmp_path: Path, module: str, args: list[str], env: dict[str, str], line: str
) -> None:
    proc = _run(module, *args, DEPOT_DATA_DIR=str(tmp_path / "data"), **env)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [line])
    assert not (tmp_path / "data").exists(), "a refused start leaves nothing behind"
