"""gs:// reference listing against a real GCS JSON API (fake-gcs-server on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gcs import b64md5, list_gcs, new_bucket, put, wandb_digest

from depot.services.common.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TooManyObjects,
)
from depot.services.manifest.gcs_listing import GCSConfig, parse_gcs_uri
from depot.services.manifest.references import ReferencePolicy, ReferenceSpec


def _fill(endpoint: str, objects: dict[str, bytes]) -> tuple[str, dict[str, dict[str, object]]]:
    bucket = new_bucket(endpoint)
    return bucket, {k: put(endpoint, bucket, k, v) for k, v in objects.items()}


async def test_prefix_lists_only_its_directory_with_wandb_digests(gcs_endpoint: str) -> None:
    data = {
        "data/a.txt": b"alpha",
        "data/empty": b"",
        "data/sub/b.bin": b"\x00" * 300,
        "data/\u00e9t\u00e9.txt": b"summer",
        "data2/sibling": b"not mine",
        "data.csv": b"not mine either",
        "data/": b"",  # a folder placeholder, not an entry
    }
    bucket, res = _fill(gcs_endpoint, data)
    summary, entries, stats = await list_gcs(f"gs://{bucket}/data", gcs_endpoint, concurrency=4)
    mine = {k: v for k, v in data.items() if k.startswith("data/") and k != "data/"}
    assert [e.path for e in entries] == sorted(k[len("data/") :] for k in mine)
    for e in entries:
        key = "data/" + e.path
        assert e.algorithm == "md5"
        assert e.digest == b64md5(mine[key])  # W&B's GCS digest: md5Hash = base64 md5 of the bytes
        assert e.size == len(mine[key])
        assert e.ref == f"gs://{bucket}/{key}"
        assert e.version_id == res[key]["generation"]
    assert summary.count == 4 and not stats.single_object
    assert summary.digest == wandb_digest([(k[len("data/") :], b64md5(v)) for k, v in mine.items()])
    # The same prefix with a trailing slash, and under a name.
    summary2, entries2, _ = await list_gcs(f"gs://{bucket}/data/", gcs_endpoint, name="n")
    assert [e.path for e in entries2] == ["n/" + e.path for e in entries]


async def test_single_object_and_generation_pin(gcs_endpoint: str) -> None:
    bucket, res = _fill(gcs_endpoint, {"m/model.pt": b"v1"})
    old = res["m/model.pt"]["generation"]
    new = put(gcs_endpoint, bucket, "m/model.pt", b"version two")["generation"]
    assert new != old
    _, [e], stats = await list_gcs(f"gs://{bucket}/m/model.pt", gcs_endpoint)
    assert stats.single_object
    assert (e.path, e.digest, e.size, e.version_id) == ("model.pt", b64md5(b"version two"), 11, new)
    _, [pinned], _ = await list_gcs(f"gs://{bucket}/m/model.pt#{old}", gcs_endpoint, name="w.pt")
    assert (pinned.path, pinned.digest, pinned.size, pinned.version_id) == ("w.pt", b64md5(b"v1"), 2, old)
    assert pinned.ref == f"gs://{bucket}/m/model.pt"
    with pytest.raises(NotFound, match="no such object generation"):
        await list_gcs(f"gs://{bucket}/m/model.pt#12345", gcs_endpoint)


async def test_many_objects_concurrently_in_key_order(gcs_endpoint: str) -> None:
    objects = {f"big/{d}/f{i:03d}": f"{d}{i}".encode() for d in "abc" for i in range(40)}
    bucket, _ = _fill(gcs_endpoint, objects)
    # 10-object pages, so the planner has truncated pages to split on.
    config = GCSConfig(endpoint_url=gcs_endpoint, page_size=10)
    summary, entries, stats = await list_gcs(f"gs://{bucket}/big", gcs_endpoint, concurrency=4, config=config)
    assert [e.path for e in entries] == sorted(k[4:] for k in objects)
    assert summary.digest == wandb_digest([(k[4:], b64md5(v)) for k, v in objects.items()])
    assert stats.units > 1  # the planner split the prefix


async def test_max_objects_and_missing_bucket(gcs_endpoint: str) -> None:
    bucket, _ = _fill(gcs_endpoint, {f"p/{i}": b"x" for i in range(5)})
    with pytest.raises(TooManyObjects):
        await list_gcs(f"gs://{bucket}/p", gcs_endpoint, max_objects=4)
    summary, _, _ = await list_gcs(f"gs://{bucket}/p", gcs_endpoint, max_objects=5)
    assert summary.count == 5
    with pytest.raises(NotFound, match="no such bucket"):
        await list_gcs("gs://no-such-bucket-here/p", gcs_endpoint)


async def test_empty_prefix_lists_nothing(gcs_endpoint: str) -> None:
    bucket, _ = _fill(gcs_endpoint, {"x/1": b"1"})
    summary, entries, _ = await list_gcs(f"gs://{bucket}/nothing", gcs_endpoint)
    assert summary.count == 0 and entries == []


def test_uri_rules() -> None:
    assert parse_gcs_uri("gs://b/k/x#17") == ("b", "k/x", "17")
    assert parse_gcs_uri("gs://b/k#tag") == ("b", "k#tag", None)  # only digits pin a generation
    assert parse_gcs_uri("gs://b") == ("b", "", None)
    for bad in ("gs:///k", "s3://b/k", "gs://b/dir/#5", "gs://b#3"):
        with pytest.raises(InvalidArgument):
            parse_gcs_uri(bad)


def test_policy_dispatch_and_allowlist() -> None:
    policy = ReferencePolicy.from_setting("open,gs://gonly", ReferencePolicy().s3)
    policy.check(ReferenceSpec("s3://open/p"), 0)
    policy.check(ReferenceSpec("gs://gonly/p"), 0)
    # A bare name is an S3 bucket, as it was before gs:// existed: an upgrade
    # must not let callers list a same-named GCS bucket with the server's
    # Google credentials.
    with pytest.raises(PermissionDenied, match="'open'"):
        policy.check(ReferenceSpec("gs://open/p"), 0)
    with pytest.raises(PermissionDenied, match="DEPOT_REFERENCE_BUCKETS") as e:
        policy.check(ReferenceSpec("s3://gonly/p"), 1)  # allowed for gs:// only
    assert e.value.field == "header.references[1].uri"
    with pytest.raises(PermissionDenied, match="'secret'"):
        policy.check(ReferenceSpec("gs://secret/p"), 0)
    with pytest.raises(InvalidArgument, match=r"s3://, gs:// and Azure Blob"):
        policy.check(ReferenceSpec("ftp://c/p"), 0)


async def test_no_google_credentials_is_a_clear_permission_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The public endpoint (no emulator): google-auth's chain runs, and finds nothing usable.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(PermissionDenied, match="no Google credentials found"):
        await list_gcs("gs://b/p", "", config=GCSConfig())


def test_wildcards_are_per_store() -> None:
    s3_any = ReferencePolicy.from_setting("*", ReferencePolicy().s3)
    s3_any.check(ReferenceSpec("s3://anything/p"), 0)
    for uri in ("gs://anything/p", "az://acct1/c0n/p", "https://acct1.blob.core.windows.net/c0n/p"):
        with pytest.raises(PermissionDenied):
            s3_any.check(ReferenceSpec(uri), 0)
    every = ReferencePolicy.from_setting("gs://*,az://*", ReferencePolicy().s3)
    every.check(ReferenceSpec("gs://anything/p"), 0)
    every.check(ReferenceSpec("az://acct1/c0n/p"), 0)
    every.check(ReferenceSpec("https://acct1.blob.core.windows.net/c0n/p"), 0)
    with pytest.raises(PermissionDenied):
        every.check(ReferenceSpec("s3://anything/p"), 0)
