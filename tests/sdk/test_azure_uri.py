"""Azure Blob URIs, connection strings and W&B's JSON form of Azure entries (no I/O)."""

from __future__ import annotations

import pytest

from depot._manifest import ManifestEntry
from depot._wandb import from_wandb_manifest, to_wandb_manifest
from depot.core.azure_blob import (
    AzureAccess,
    AzureUriError,
    BlobAddress,
    is_azure_uri,
    parse_azure_uri,
    shared_key_authorization,
)


@pytest.mark.parametrize(
    ("uri", "want"),
    [
        ("https://acct1.blob.core.windows.net/c0n/a/b c", BlobAddress("https", "acct1", "c0n", "a/b c")),
        ("https://acct1.blob.core.windows.net/c0n/a%2Fb", BlobAddress("https", "acct1", "c0n", "a/b")),
        ("https://acct1.blob.core.windows.net/c0n", BlobAddress("https", "acct1", "c0n", "")),
        ("az://acct1/c0n/p/", BlobAddress("az", "acct1", "c0n", "p/")),
        ("az://acct1/$root/x", BlobAddress("az", "acct1", "$root", "x")),
        (
            "https://acct1.blob.core.windows.net/c0n/k?versionId=2024-01-01T00:00:00.0000000Z",
            BlobAddress("https", "acct1", "c0n", "k", "2024-01-01T00:00:00.0000000Z"),
        ),
    ],
)
def test_parse(uri: str, want: BlobAddress) -> None:
    assert is_azure_uri(uri)
    assert parse_azure_uri(uri) == want


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://example.com/c0n/k", "not an Azure Blob URI"),
        ("https://acct1.blob.core.windows.net:8443/c0n/k", "not an Azure Blob URI"),
        ("az://Upper/c0n/k", "storage account name"),
        ("az://acct1/ab/k", "container name"),
        ("az://acct1/bad--name/k", "container name"),
        ("az://acct1/c0n/k#frag", "'#'"),
        ("az://acct1/c0n/p/?versionId=v", "needs a blob name"),
        ("https://acct1.blob.core.windows.net/c0n/k?sv=1&sig=S3CR3T", "SAS"),
        # Dot segments: an HTTP client would resolve them after the allowlist
        # checked container "c0n", and fetch from another container.
        ("az://acct1/c0n/../secret/blob.bin", "'..' path segments"),
        ("az://acct1/c0n/.%2E/secret/blob.bin", "'..' path segments"),
        ("az://acct1/c0n/%2E%2E/secret/blob.bin", "'..' path segments"),
        ("az://acct1/c0n/a/./b", "'..' path segments"),
        ("https://acct1.blob.core.windows.net/c0n/../secret/blob.bin", "'..' path segments"),
        ("https://acct1.blob.core.windows.net/c0n/p/%2e%2e/x?versionId=v", "'..' path segments"),
    ],
)
def test_refused(uri: str, message: str) -> None:
    with pytest.raises(AzureUriError, match=message) as err:
        parse_azure_uri(uri)
    assert "S3CR3T" not in str(err.value)


def test_refs_keep_the_spelling_and_never_a_query() -> None:
    https = parse_azure_uri("https://acct1.blob.core.windows.net/c0n/p/k?versionId=v1")
    assert https.ref("p/k") == "https://acct1.blob.core.windows.net/c0n/p/k"
    assert parse_azure_uri("az://acct1/c0n/p").ref("p/k") == "az://acct1/c0n/p/k"
    assert https.allow_key == "acct1/c0n"


def test_connection_string_and_secrets_out_of_repr() -> None:
    acc = AzureAccess.from_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=a2V5PT0=;EndpointSuffix=core.chinacloudapi.cn"
    )
    assert acc.endpoint == "https://acct1.blob.core.chinacloudapi.cn" and acc.account_key == "a2V5PT0="
    assert "a2V5PT0=" not in repr(acc)
    sas = AzureAccess.from_connection_string("AccountName=acct1;SharedAccessSignature=sv=1&sig=x")
    assert (
        sas.url("c0n", "a b", {"versionid": "v"})
        == "https://acct1.blob.core.windows.net/c0n/a%20b?versionid=v&sv=1&sig=x"
    )
    with pytest.raises(AzureUriError, match="AccountName"):
        AzureAccess.from_connection_string("AccountKey=abc")


def test_shared_key_signs_the_canonical_request() -> None:
    # Changing anything Shared Key covers changes the signature (Azurite checks the value itself).
    h = {"x-ms-date": "Mon, 01 Jan 2024 00:00:00 GMT", "x-ms-version": "2021-08-06"}
    url = "http://127.0.0.1:1/devstoreaccount1/c0n?restype=container&comp=list"
    base = shared_key_authorization("devstoreaccount1", "a2V5", "GET", url, h)
    assert base.startswith("SharedKey devstoreaccount1:")
    assert shared_key_authorization("devstoreaccount1", "a2V5", "GET", url + "&prefix=p", h) != base
    assert shared_key_authorization("devstoreaccount1", "a2V5", "GET", url, {**h, "If-Match": '"e"'}) != base
    # Query order does not matter: Azure canonicalizes it.
    swapped = "http://127.0.0.1:1/devstoreaccount1/c0n?comp=list&restype=container"
    assert shared_key_authorization("devstoreaccount1", "a2V5", "GET", swapped, h) == base
    with pytest.raises(AzureUriError, match="base64"):
        shared_key_authorization("devstoreaccount1", "not base64!", "GET", url, h)


def test_wandb_json_of_an_azure_entry_round_trips() -> None:
    ref = "https://acct1.blob.core.windows.net/c0n/data/a.txt"
    entry = ManifestEntry("a.txt", "0x8DC0123456789AB", "etag", 5, ref=ref, version_id="2024-01-01T00:00:00Z")
    doc = to_wandb_manifest([entry])
    # W&B's Azure handler: digest = ETag, extra = {etag, versionID}.
    assert doc["contents"]["a.txt"] == {
        "digest": "0x8DC0123456789AB",
        "size": 5,
        "ref": ref,
        "extra": {"etag": "0x8DC0123456789AB", "versionID": "2024-01-01T00:00:00Z"},
    }
    (back,) = from_wandb_manifest(doc)
    assert (back.path, back.digest, back.algorithm, back.size, back.ref, back.version_id, back.extra) == (
        "a.txt",
        "0x8DC0123456789AB",
        "etag",
        5,
        ref,
        "2024-01-01T00:00:00Z",
        "",
    )
