"""Azure Blob references end to end: listed by the server, downloaded and verified by the SDK (Azurite)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.azurite import ACCOUNT, Azurite
from support.entities import create_team
from support.s3 import wandb_digest
from support.servers import ServerThread, make_config

import depot
from depot._exceptions import DigestMismatchError, InvalidArgumentError, PermissionDeniedError
from depot._manifest import ManifestEntry
from depot._references import ReferenceCache, fetch_reference

OBJECTS = {
    "data/a.txt": b"alpha",
    "data/sub/b.txt": b"bravo!",
    "data/sub/empty": b"",
    "data-old/x": b"sibling",
    "data.csv": b"sibling",
}


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    # Both the server (listing) and the SDK (downloads) find the account's
    # endpoint and key in the standard variable.
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
    return azurite.create_container()


@pytest.fixture
def az_server(tmp_path: Path, database_url: str, container: str) -> Iterator[ServerThread]:
    cfg = make_config(
        tmp_path / "depot-data",
        database_url,
        (tmp_path / "blobs").as_uri(),
        DEPOT_REFERENCE_BUCKETS=f"{ACCOUNT}/{container}",
    )
    srv = ServerThread(cfg).start()
    create_team(srv.address, srv.admin_key, "team")
    yield srv
    srv.stop()


def test_prefix_reference_logs_downloads_and_pins(
    az_server: ServerThread, azurite: Azurite, container: str, tmp_path: Path
) -> None:
    etags = {k: azurite.put(container, k, v) for k, v in OBJECTS.items()}
    kw = {"address": az_server.address, "api_key": az_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("azrefs", type="dataset")
        art.add_reference(f"az://{ACCOUNT}/{container}/data")
        logged = run.log_artifact(art).wait()
    want = {k[len("data/") :]: etags[k] for k in etags if k.startswith("data/")}
    assert logged.digest == wandb_digest(list(want.items()))
    files = {e.path: e for e in logged.files()}
    assert sorted(files) == sorted(want)
    assert files["sub/empty"].size == 0
    out = Path(logged.download(tmp_path / "dl"))
    for path in want:
        assert (out / path).read_bytes() == OBJECTS["data/" + path]
    # Overwritten after logging: the cache still holds the recorded bytes...
    azurite.put(container, "data/a.txt", b"changed")
    again = Path(logged.download(tmp_path / "dl2"))
    assert (again / "a.txt").read_bytes() == b"alpha"
    # ...and Azure is asked for the recorded ETag (If-Match; Azurite keeps no
    # versions to pin), so the changed blob is refused, never taken for it.
    with pytest.raises(DigestMismatchError, match="overwritten after it was recorded"):
        logged.download(tmp_path / "dl3", skip_cache=True)


def test_unallowed_container_is_refused(az_server: ServerThread, azurite: Azurite) -> None:
    other = azurite.create_container()
    azurite.put(other, "data/a", b"a")
    kw = {"address": az_server.address, "api_key": az_server.admin_key}
    with depot.init(entity="team", project="p", **kw) as run:
        art = depot.Artifact("azrefs", type="dataset")
        art.add_reference(f"az://{ACCOUNT}/{other}/data")
        with pytest.raises(PermissionDeniedError, match=f"{ACCOUNT}/{other}"):
            run.log_artifact(art).wait()


def test_sas_token_never_leaves_the_machine() -> None:
    art = depot.Artifact("azrefs", type="dataset")
    with pytest.raises(InvalidArgumentError) as err:
        art.add_reference("https://acct.blob.core.windows.net/c0n/p?sv=2024&sig=TOPSECRET")
    assert "TOPSECRET" not in str(err.value) and "SAS" in str(err.value)


def test_fetch_verifies_and_caches(azurite: Azurite, container: str, tmp_path: Path) -> None:
    etag = azurite.put(container, "k/blob.bin", b"x" * 1000)
    ref = f"az://{ACCOUNT}/{container}/k/blob.bin"
    entry = ManifestEntry("blob.bin", etag, "etag", 1000, ref=ref)
    cache = ReferenceCache(tmp_path / "cache")
    assert fetch_reference(entry, tmp_path / "one", cache=cache)
    assert (tmp_path / "one").read_bytes() == b"x" * 1000
    # A wrong recorded size is caught, and a missing blob is missing.
    with pytest.raises(DigestMismatchError):
        fetch_reference(dataclasses.replace(entry, size=999), tmp_path / "two")
    gone = dataclasses.replace(entry, ref=f"az://{ACCOUNT}/{container}/k/none")
    assert not fetch_reference(gone, tmp_path / "three", allow_missing=True)


def test_bad_key_is_a_clear_permission_error(
    azurite: Azurite, container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etag = azurite.put(container, "k/blob", b"abc")
    wrong = "d3Jvbmcga2V5IGZvciB0aGUgdGVzdA=="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string(wrong))
    entry = ManifestEntry("blob", etag, "etag", 3, ref=f"az://{ACCOUNT}/{container}/k/blob")
    with pytest.raises(PermissionDeniedError, match="Azure refused the credentials") as err:
        fetch_reference(entry, tmp_path / "x")
    assert wrong not in str(err.value)
