"""S3 reference semantics against moto (the reference for S3 behaviour)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from support.s3 import list_reference, wandb_digest

from depot.services.common.errors import InvalidArgument, NotFound, TooManyObjects
from depot.services.manifest.s3_listing import S3Config, parse_s3_uri


def _put(boto: Any, bucket: str, objects: dict[str, bytes]) -> dict[str, str]:
    """Uploads objects; returns key -> ETag (hex, unquoted)."""
    out = {}
    for key, body in objects.items():
        r = boto.put_object(Bucket=bucket, Key=key, Body=body)
        out[key] = r["ETag"].strip('"')
    return out


def _boto_listing(boto: Any, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    out = []
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [(o["Key"], o["ETag"].strip('"'), o["Size"]) for o in page.get("Contents", [])]
    return out


def _paths(entries: list[Any]) -> list[str]:
    return [e.path for e in entries]


SIBLINGS = {
    "data/a.txt": b"alpha",
    "data/b/c.txt": b"gamma",
    "data/b/d/e.bin": b"\x00" * 100,
    "data/empty.txt": b"",
    "data-old/x.txt": b"old",
    "data.csv": b"csv",
    "datum/y": b"y",
}


async def test_prefix_excludes_sibling_prefixes(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    etags = _put(s3ref_boto, s3ref_bucket, SIBLINGS)
    summary, entries, stats = await list_reference(f"s3://{s3ref_bucket}/data", s3ref_config)
    assert _paths(entries) == ["a.txt", "b/c.txt", "b/d/e.bin", "empty.txt"]
    assert not stats.single_object
    for e in entries:
        key = "data/" + e.path
        assert e.ref == f"s3://{s3ref_bucket}/{key}"
        assert e.algorithm == "etag"
        assert e.digest == etags[key]
        assert e.size == len(SIBLINGS[key])
        assert e.version_id == ""
    # Zero-byte objects are entries like any other.
    empty = next(e for e in entries if e.path == "empty.txt")
    assert empty.size == 0 and empty.digest == hashlib.md5(b"").hexdigest()
    assert summary.count == 4 and summary.total_size == 5 + 5 + 100


async def test_trailing_slash_and_name(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    _put(s3ref_boto, s3ref_bucket, SIBLINGS)
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/data/b/", s3ref_config, name="ds")
    assert _paths(entries) == ["ds/c.txt", "ds/d/e.bin"]
    assert entries[0].ref == f"s3://{s3ref_bucket}/data/b/c.txt"


async def test_object_wins_over_prefix(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    etags = _put(s3ref_boto, s3ref_bucket, {**SIBLINGS, "data": b"the object"})
    summary, entries, stats = await list_reference(f"s3://{s3ref_bucket}/data", s3ref_config)
    assert stats.single_object
    assert [(e.path, e.digest, e.size, e.ref) for e in entries] == [
        ("data", etags["data"], 10, f"s3://{s3ref_bucket}/data")
    ]
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/data.csv", s3ref_config, name="t.csv")
    assert _paths(entries) == ["t.csv"]
    # A basename, not the full key, for a nested single object.
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/data/b/c.txt", s3ref_config)
    assert _paths(entries) == ["c.txt"] and entries[0].ref.endswith("/data/b/c.txt")
    # The trailing slash still means the prefix.
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/data/", s3ref_config)
    assert len(entries) == 4


async def test_zero_byte_object_and_folder_markers(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    _put(s3ref_boto, s3ref_bucket, {"z/empty": b"", "z/sub/": b"", "z/sub/f": b"f", "z/": b""})
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/z", s3ref_config)
    # Folder markers ("…/") are not files (W&B skips them too); empty files are entries.
    assert [(e.path, e.size) for e in entries] == [("empty", 0), ("sub/f", 1)]
    _, entries, stats = await list_reference(f"s3://{s3ref_bucket}/z/empty", s3ref_config)
    assert stats.single_object and [(e.path, e.size) for e in entries] == [("empty", 0)]


async def test_whole_bucket_and_missing(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    _put(s3ref_boto, s3ref_bucket, {"a": b"1", "b/c": b"2"})
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}", s3ref_config)
    assert _paths(entries) == ["a", "b/c"]
    summary, entries, _ = await list_reference(f"s3://{s3ref_bucket}/nothing-here", s3ref_config)
    assert entries == [] and summary.count == 0
    with pytest.raises(NotFound):
        await list_reference(f"s3://{s3ref_bucket}-does-not-exist/x/", s3ref_config)


async def test_special_characters(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    objects = {
        "sp/a&b.txt": b"1",
        "sp/with space.txt": b"2",
        "sp/ünïcødé/日本.bin": b"3",
        "sp/quote'\"<>.txt": b"4",
        "sp/plus+percent%20.txt": b"5",
        "sp/hash#q?x=1": b"6",
        "sp/é": b"7",
        "sp/z\u00e9\U0001f600": b"8",
    }
    etags = _put(s3ref_boto, s3ref_bucket, objects)
    summary, entries, _ = await list_reference(f"s3://{s3ref_bucket}/sp", s3ref_config)
    expected = sorted((k[3:], etags[k]) for k in objects)
    assert [(e.path, e.digest) for e in entries] == sorted(expected, key=lambda t: t[0].encode())
    assert {e.ref for e in entries} == {f"s3://{s3ref_bucket}/{k}" for k in objects}
    # A single object whose key holds '?' and '#'.
    _, entries, _ = await list_reference(f"s3://{s3ref_bucket}/sp/hash#q?x=1", s3ref_config)
    assert _paths(entries) == ["hash#q?x=1"]


async def test_versioned_bucket(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    b = s3ref_bucket
    s3ref_boto.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3ref_boto.put_object(Bucket=b, Key="v/a", Body=b"one")
    v2 = s3ref_boto.put_object(Bucket=b, Key="v/a", Body=b"two!")
    s3ref_boto.put_object(Bucket=b, Key="v/deleted", Body=b"gone")
    s3ref_boto.delete_object(Bucket=b, Key="v/deleted")  # latest is a delete marker
    s3ref_boto.put_object(Bucket=b, Key="v/undeleted", Body=b"x")
    s3ref_boto.delete_object(Bucket=b, Key="v/undeleted")
    v3 = s3ref_boto.put_object(Bucket=b, Key="v/undeleted", Body=b"back")
    s3ref_boto.put_object(Bucket=b, Key="v/zero", Body=b"")
    summary, entries, stats = await list_reference(f"s3://{b}/v", s3ref_config)
    assert stats.versioned
    got = [(e.path, e.digest, e.size, e.version_id) for e in entries]
    assert got == [
        ("a", v2["ETag"].strip('"'), 4, v2["VersionId"]),
        ("undeleted", v3["ETag"].strip('"'), 4, v3["VersionId"]),
        ("zero", hashlib.md5(b"").hexdigest(), 0, entries[2].version_id),
    ]
    assert entries[2].version_id
    # ?versionId= pins that version (one object, not the prefix).
    _, entries, stats = await list_reference(f"s3://{b}/v/a?versionId={v1['VersionId']}", s3ref_config)
    assert stats.single_object
    assert [(e.path, e.digest, e.size, e.version_id) for e in entries] == [
        ("a", v1["ETag"].strip('"'), 3, v1["VersionId"])
    ]
    # The single-object form records the current version id.
    _, entries, _ = await list_reference(f"s3://{b}/v/a", s3ref_config, name="pinned")
    assert [(e.path, e.version_id) for e in entries] == [("pinned", v2["VersionId"])]
    with pytest.raises(NotFound):
        await list_reference(f"s3://{b}/v/a?versionId=nonexistentversionid", s3ref_config)
    # A key whose latest version is a delete marker is not an object: it is a (empty) prefix.
    summary, entries, _ = await list_reference(f"s3://{b}/v/deleted", s3ref_config)
    assert entries == []


async def test_versioned_bucket_split_listing(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    """Tiny pages force the planner to split the key space in a versioned bucket."""
    b = s3ref_bucket
    s3ref_boto.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    expected = {}
    for i in range(40):
        key = f"sv/{i % 3}/f{i:03d}"
        s3ref_boto.put_object(Bucket=b, Key=key, Body=b"old")
        r = s3ref_boto.put_object(Bucket=b, Key=key, Body=f"new{i}".encode())
        if i % 5 == 4:
            s3ref_boto.delete_object(Bucket=b, Key=key)
        else:
            expected[key[3:]] = (r["ETag"].strip('"'), r["VersionId"])
    cfg = dataclasses.replace(s3ref_config, page_size=2)
    _, entries, stats = await list_reference(f"s3://{b}/sv", cfg, concurrency=4)
    assert stats.units > 1
    assert {e.path: (e.digest, e.version_id) for e in entries} == expected
    assert _paths(entries) == sorted(expected)


@pytest.mark.parametrize("layout", ["nested", "flat"])
async def test_split_listing_matches_boto(
    s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config, layout: str
) -> None:
    b = s3ref_bucket
    objects = {}
    for i in range(120):
        key = f"L/d{i // 17:02d}/k{i:04d}" if layout == "nested" else f"L/k{i * 7919 % 1000:03d}x{i}"
        objects[key] = f"{i}".encode()
    objects["L/d00"] = b"an exact key that is also a split prefix"
    objects["L/k"] = b"another"
    _put(s3ref_boto, b, objects)
    cfg = dataclasses.replace(s3ref_config, page_size=3)
    summary, entries, stats = await list_reference(f"s3://{b}/L", cfg, concurrency=5)
    assert stats.units > 5
    listing = _boto_listing(s3ref_boto, b, "L/")
    assert [(e.path, e.digest, e.size) for e in entries] == [(k[2:], t, s) for k, t, s in listing]
    assert summary.digest == wandb_digest([(k[2:], t) for k, t, _ in listing])


async def test_max_objects(s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config) -> None:
    _put(s3ref_boto, s3ref_bucket, {f"m/{i}": b"x" for i in range(5)})
    summary, _, _ = await list_reference(f"s3://{s3ref_bucket}/m", s3ref_config, max_objects=5)
    assert summary.count == 5
    with pytest.raises(TooManyObjects) as exc:
        await list_reference(f"s3://{s3ref_bucket}/m", s3ref_config, max_objects=4)
    assert exc.value.limit == 4 and "max_objects=4" in str(exc.value) and "more" in str(exc.value)
    cfg = dataclasses.replace(s3ref_config, page_size=1)
    with pytest.raises(TooManyObjects):
        await list_reference(f"s3://{s3ref_bucket}/m", cfg, max_objects=3, concurrency=3)


async def test_digest_equals_wandb_and_tracks_changes(
    s3ref_boto: Any, s3ref_bucket: str, s3ref_config: S3Config
) -> None:
    b = s3ref_bucket
    _put(s3ref_boto, b, {f"w/{n}": n.encode() * 3 for n in ("b.txt", "a.txt", "c/d.txt", "A", "é")})
    first, entries, _ = await list_reference(f"s3://{b}/w", s3ref_config)
    listing = _boto_listing(s3ref_boto, b, "w/")
    assert first.digest == wandb_digest([(k[2:], t) for k, t, _ in listing])
    again, _, _ = await list_reference(f"s3://{b}/w", s3ref_config)
    assert again.digest == first.digest  # unchanged listing -> same digest
    _put(s3ref_boto, b, {"w/a.txt": b"changed"})
    changed, _, _ = await list_reference(f"s3://{b}/w", s3ref_config)
    assert changed.digest != first.digest
    # With a name the W&B digest is over the prefixed paths.
    named, _, _ = await list_reference(f"s3://{b}/w", s3ref_config, name="root")
    listing = _boto_listing(s3ref_boto, b, "w/")
    assert named.digest == wandb_digest([("root/" + k[2:], t) for k, t, _ in listing])


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://b/k/x") == ("b", "k/x", None)
    assert parse_s3_uri("s3://b") == ("b", "", None)
    assert parse_s3_uri("s3://b/k?versionId=abc") == ("b", "k", "abc")
    assert parse_s3_uri("s3://b/a b#c") == ("b", "a b#c", None)
    for bad in ("http://b/k", "s3:///k", "s3://b/k/?versionId=x", "s3://b/k?versionId="):
        with pytest.raises(InvalidArgument):
            parse_s3_uri(bad)
