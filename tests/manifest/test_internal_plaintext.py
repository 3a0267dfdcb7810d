"""A service never forwards callers' API keys in plaintext off this machine
unless told to (issue 8, round 2).

The manifest service's channel to metadata carries every caller's key. A
bare non-loopback DEPOT_METADATA_ADDRESS with no TLS settings used to be
used in plaintext with a log warning; now it takes ``grpc://`` or
DEPOT_INSECURE=1 to mean it, and is otherwise refused at startup in one line.
0.0.0.0 and :: are listening addresses, not loopback destinations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from depot.core.addresses import is_loopback, split_scheme
from depot.services.common import tls
from depot.services.common.config import ConfigError
from depot.services.manifest.config import ManifestConfig


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3:50051", "metadata:50051", "depot.example.com:443", "[2001:db8::1]:1", "0.0.0.0:50051", "[::]:1"],
)
def test_a_bare_remote_address_without_tls_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="refusing to forward API keys in plaintext") as e:
        tls.plaintext_target(address, None, None)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError):
        tls.internal_channel(address, None, None)


@pytest.mark.parametrize("address", ["grpc://10.1.2.3:50051", "grpc://metadata:50051", "grpc://0.0.0.0:1"])
def test_grpc_scheme_chooses_plaintext(address: str) -> None:
    assert tls.plaintext_target(address, None, None) == address.removeprefix("grpc://")


def test_depot_insecure_chooses_plaintext() -> None:
    assert tls.plaintext_target("metadata:50051", None, None, insecure=True) == "metadata:50051"
    env = {"DEPOT_INTERNAL_SECRET": "s", "DEPOT_METADATA_ADDRESS": "metadata:50051"}
    assert ManifestConfig.from_env({**env, "DEPOT_INSECURE": "1"}).insecure
    for off in ("", "0"):
        with pytest.raises(ConfigError, match="refusing to forward API keys in plaintext"):
            ManifestConfig.from_env({**env, "DEPOT_INSECURE": off})


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "localhost:1", "[::1]:1", "unix:/tmp/s"])
def test_loopback_stays_plaintext(address: str) -> None:
    assert tls.plaintext_target(address, None, None) == address


def test_unspecified_addresses_are_not_local() -> None:
    assert not is_loopback("0.0.0.0:50051")
    assert not is_loopback("[::]:50051")
    assert is_loopback("127.0.0.1:1")


def test_manifest_service_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEPOT_DATA_DIR": str(tmp_path / "data"),
        "DEPOT_INTERNAL_SECRET": "s",
        "DEPOT_METADATA_ADDRESS": "metadata:50051",
        "DEPOT_LISTEN": "127.0.0.1:0",
    }
    for name in (*tls.SERVER_VARS, *tls.CLIENT_VARS, "DEPOT_INSECURE"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "depot.services.manifest", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "plaintext" in lines[0] and "grpc://metadata:50051" in lines[0]


def _config_literals(kustomization: Path) -> dict[str, str]:
    import yaml

    doc = yaml.safe_load(kustomization.read_text())
    out: dict[str, str] = {}
    for gen in doc.get("configMapGenerator", []):
        if gen["name"] == "depot-config":
            out.update(lit.split("=", 1) for lit in gen.get("literals", []))
    return out


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_k8s_metadata_address_says_how_it_is_called(overlay: str) -> None:
    k8s = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
    values = {**_config_literals(k8s / "base" / "kustomization.yaml")}
    values.update(_config_literals(k8s / "overlays" / overlay / "kustomization.yaml"))
    address = values["DEPOT_METADATA_ADDRESS"]
    assert address.startswith(("grpc://", "grpcs://")), address
    # What the manifest service's startup check does with it (prod serves TLS).
    assert split_scheme(address)[1] is (overlay == "prod")
    tls.plaintext_target(address, None, None)
