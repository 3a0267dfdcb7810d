"""Azure Blob reference listing against Azurite: S3's rules, W&B's entries and digest."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from support.azurite import ACCOUNT, Azurite
from support.s3 import wandb_digest

from depot.native import ManifestReader, ManifestWriter
from depot.services.common.errors import InvalidArgument, NotFound, PermissionDenied, TooManyObjects
from depot.services.manifest.azure_listing import AzureConfig, write_azure_reference
from depot.services.manifest.references import ReferencePolicy, ReferenceSpec

SIBLINGS = {
    "data/a.txt": b"alpha",
    "data/b/c.txt": b"gamma",
    "data/b/d/e.bin": b"\x00" * 100,
    "data/empty.txt": b"",
    "data/z/last": b"z",
    "data-old/x.txt": b"old",
    "data.csv": b"csv",
    "datum/y": b"y",
}


def _config(az: Azurite, **kw: Any) -> AzureConfig:
    return dataclasses.replace(AzureConfig({ACCOUNT: az.connection_string()}, use_identity=False), **kw)


async def _list(uri: str, config: AzureConfig, **kw: Any) -> tuple[Any, list[Any], Any]:
    buf = io.BytesIO()
    writer = ManifestWriter(buf, "md5")
    stats = await write_azure_reference(uri, writer, config=config, **kw)
    summary = writer.close()
    buf.seek(0)
    return summary, list(ManifestReader(buf)), stats


@pytest.fixture
def filled(azurite: Azurite) -> tuple[str, dict[str, str]]:
    container = azurite.create_container()
    etags = {k: azurite.put(container, k, v) for k, v in SIBLINGS.items()}
    return container, etags


async def test_prefix_excludes_siblings_and_matches_wandb(azurite: Azurite, filled: tuple[str, dict[str, str]]) -> None:
    container, etags = filled
    summary, entries, stats = await _list(f"az://{ACCOUNT}/{container}/data", _config(azurite))
    assert [e.path for e in entries] == ["a.txt", "b/c.txt", "b/d/e.bin", "empty.txt", "z/last"]
    assert not stats.single_object
    for e in entries:
        key = "data/" + e.path
        assert (e.algorithm, e.digest, e.size, e.version_id) == ("etag", etags[key], len(SIBLINGS[key]), "")
        assert e.ref == f"az://{ACCOUNT}/{container}/{key}"
    # Zero-byte blobs are entries like any other.
    assert next(e for e in entries if e.path == "empty.txt").size == 0
    # W&B's Azure handler: digest = the ETag without quotes; the artifact digest follows.
    assert summary.digest == wandb_digest([(k[len("data/") :], etags[k]) for k in etags if k.startswith("data/")])
    # The level has blobs and three sub-prefixes: listed as concurrent units.
    assert stats.units >= 3


async def test_blob_wins_over_prefix_and_name(azurite: Azurite, filled: tuple[str, dict[str, str]]) -> None:
    container, etags = filled
    _, entries, stats = await _list(f"az://{ACCOUNT}/{container}/data.csv", _config(azurite), name="t.csv")
    assert stats.single_object
    assert [(e.path, e.digest, e.size) for e in entries] == [("t.csv", etags["data.csv"], 3)]
    _, entries, _ = await _list(f"az://{ACCOUNT}/{container}/data/b/", _config(azurite), name="ds")
    assert [e.path for e in entries] == ["ds/c.txt", "ds/d/e.bin"]
    assert entries[0].ref == f"az://{ACCOUNT}/{container}/data/b/c.txt"


async def test_directory_stubs_are_skipped(azurite: Azurite) -> None:
    # Hierarchical-namespace accounts keep directories as blobs with hdi_isfolder metadata.
    container = azurite.create_container()
    etag = azurite.put(container, "ds/file", b"f")
    meta = {"x-ms-blob-type": "BlockBlob", "x-ms-meta-hdi_isfolder": "true"}
    status, _, _ = azurite.request("PUT", container, "ds/dir", headers=meta)
    assert status == 201
    summary, entries, _ = await _list(f"az://{ACCOUNT}/{container}/ds", _config(azurite))
    assert [(e.path, e.digest) for e in entries] == [("file", etag)]
    assert summary.digest == wandb_digest([("file", etag)])
    # Named directly, a stub is a prefix, not a blob.
    _, entries, stats = await _list(f"az://{ACCOUNT}/{container}/ds/dir", _config(azurite))
    assert entries == [] and not stats.single_object


async def test_pages_follow_next_marker(azurite: Azurite) -> None:
    container = azurite.create_container()
    names = [f"flat/{i:03d}" for i in range(23)]
    etags = {n: azurite.put(container, n, n.encode()) for n in names}
    summary, entries, stats = await _list(f"az://{ACCOUNT}/{container}/flat", _config(azurite, page_size=5))
    assert [e.path for e in entries] == [n[5:] for n in names]
    assert summary.digest == wandb_digest([(n[5:], etags[n]) for n in names])
    assert stats.requests >= 23 // 5 + 1


async def test_max_objects_is_an_error(azurite: Azurite, filled: tuple[str, dict[str, str]]) -> None:
    container, _ = filled
    with pytest.raises(TooManyObjects, match="max_objects=4"):
        await _list(f"az://{ACCOUNT}/{container}/data", _config(azurite), max_objects=4)
    _, entries, _ = await _list(f"az://{ACCOUNT}/{container}/data", _config(azurite), max_objects=5)
    assert len(entries) == 5


async def test_bad_key_is_a_clear_permission_error(azurite: Azurite, filled: tuple[str, dict[str, str]]) -> None:
    container, _ = filled
    wrong = "d3Jvbmcga2V5IGZvciB0aGUgdGVzdA=="
    config = AzureConfig({ACCOUNT: azurite.connection_string(wrong)}, use_identity=False)
    with pytest.raises(PermissionDenied) as err:
        await _list(f"az://{ACCOUNT}/{container}/data", config)
    assert "AuthorizationFailure" in str(err.value) or "AuthenticationFailed" in str(err.value)
    assert f"{ACCOUNT}/{container}" in str(err.value) and wrong not in str(err.value)


async def test_missing_container_is_not_found(azurite: Azurite) -> None:
    with pytest.raises(NotFound, match="ContainerNotFound"):
        await _list(f"az://{ACCOUNT}/no-such-container/data", _config(azurite))


def test_policy_allows_only_listed_containers() -> None:
    policy = ReferencePolicy(frozenset({"acct/allowed", "s3bucket"}), azure=AzureConfig())
    policy.check(ReferenceSpec("https://acct.blob.core.windows.net/allowed/p"), 0)
    policy.check(ReferenceSpec("az://acct/allowed/p"), 0)
    with pytest.raises(PermissionDenied, match="'acct/other' is not one Depot may list"):
        policy.check(ReferenceSpec("https://acct.blob.core.windows.net/other/p"), 0)
    with pytest.raises(PermissionDenied):
        policy.check(ReferenceSpec("az://other/allowed/p"), 0)
    # Plain https:// stays the SDK's; a SAS token never gets near a manifest or a message.
    with pytest.raises(InvalidArgument, match="resolved by the SDK"):
        policy.check(ReferenceSpec("https://example.com/allowed/p"), 0)
    with pytest.raises(InvalidArgument) as err:
        policy.check(ReferenceSpec("https://acct.blob.core.windows.net/allowed/p?sv=1&sig=SECRET"), 0)
    assert "SECRET" not in str(err.value) and "SAS" in str(err.value)
