"""Scale and fault tests against the S3 simulator (bench/s3sim.py)."""

from __future__ import annotations

import weakref
from typing import Any

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig
from support.s3 import expected_digest, list_reference

from depot.services.common.errors import TooManyObjects
from depot.services.manifest import _s3_http, s3_listing
from depot.services.manifest.s3_listing import S3Config


def _config(sim: Any, **kw: Any) -> S3Config:
    return S3Config(
        endpoint_url=sim.endpoint_url,
        region="us-east-1",
        aws_access_key_id="sim",
        aws_secret_access_key="sim",
        **{"backoff_base": 0.005, "backoff_max": 0.5, **kw},
    )


@pytest.mark.parametrize("layout,versioned", [("nested", False), ("flat", False), ("flat", True)])
async def test_simulator_parses_with_botocore(layout: str, versioned: bool) -> None:
    async with s3sim.Simulator(objects=2345, layout=layout, versioned=versioned, delete_every=5) as sim:
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=sim.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=BotoConfig(s3={"addressing_style": "path"}),
        ) as c:
            keys = []
            async for page in c.get_paginator("list_objects_v2").paginate(Bucket="bk"):
                keys += [(o["Key"], o["ETag"].strip('"'), o["Size"]) for o in page.get("Contents", [])]
            sp = sim.space
            assert keys == [(sp.key(i), sp.etag_of(sp.key(i)), sp.size(i)) for i in range(sp.n)]
            prefixes = []
            async for page in c.get_paginator("list_objects_v2").paginate(
                Bucket="bk", Delimiter="/", PaginationConfig={"PageSize": 2}
            ):
                prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            assert prefixes == (["dataset/"] if layout == "nested" else ["flat/"])
            if versioned:
                latest = []
                async for page in c.get_paginator("list_object_versions").paginate(
                    Bucket="bk", PaginationConfig={"PageSize": 7}
                ):
                    latest += [v["Key"] for v in page.get("Versions", []) if v["IsLatest"]]
                assert latest == [k for k, *_ in sp.expected_entries()]
                assert (await c.get_bucket_versioning(Bucket="bk"))["Status"] == "Enabled"
            head = await c.head_object(Bucket="bk", Key=sp.key(3))
            assert head["ContentLength"] == sp.size(3)
            body = await (await c.get_object(Bucket="bk", Key=sp.key(3)))["Body"].read()
            assert len(body) == sp.size(3)


@pytest.mark.parametrize("layout", ["nested", "flat"])
async def test_listing_matches_key_formula(layout: str) -> None:
    async with s3sim.Simulator(objects=23_456, layout=layout) as sim:
        root = "dataset/" if layout == "nested" else "flat/"
        summary, entries, stats = await list_reference(
            f"s3://bk/{root.rstrip('/')}", _config(sim), name="n", concurrency=8
        )
        assert (summary.digest, summary.count) == expected_digest(sim.space, root, "n")
        assert stats.units >= 8
        assert entries[0].path == "n/" + sim.space.key(0)[len(root) :]
        assert entries[0].size == 0  # i = 0 is a zero-byte object


async def test_versioned_listing_with_delete_markers() -> None:
    async with s3sim.Simulator(objects=7_000, layout="flat", versioned=True, delete_every=9) as sim:
        summary, entries, stats = await list_reference("s3://bk/flat/", _config(sim), concurrency=6)
        assert stats.versioned
        assert (summary.digest, summary.count) == expected_digest(sim.space, "flat/")
        key = "flat/" + entries[1].path
        assert entries[1].version_id == sim.space.version_id_of(key)


@pytest.mark.parametrize(
    "faults",
    [
        {"slowdown_rate": 0.4},  # a SlowDown storm
        {"error500_rate": 0.25},
        {"reset_rate": 0.15},
        {"slowdown_rate": 0.1, "error500_rate": 0.1, "reset_rate": 0.1},
    ],
)
async def test_faults_still_yield_the_complete_manifest(faults: dict[str, float]) -> None:
    async with s3sim.Simulator(objects=30_000, layout="nested", seed=7, **faults) as sim:
        summary, _, stats = await list_reference("s3://bk/dataset", _config(sim, max_attempts=30), concurrency=8)
        assert (summary.digest, summary.count) == expected_digest(sim.space, "dataset/")
        assert stats.retries > 0
        assert sim.stats.slowdowns + sim.stats.errors500 + sim.stats.resets > 0


async def test_spilled_pages_keep_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_listing, "BUFFER_PAGES_PER_WORKER", 0)
    async with s3sim.Simulator(objects=40_000, layout="flat", latency_ms=1) as sim:
        cfg = _config(sim, page_size=250)
        summary, _, stats = await list_reference("s3://bk/flat", cfg, concurrency=8)
        assert stats.spilled_pages > 0
        assert (summary.digest, summary.count) == expected_digest(sim.space, "flat/")


async def test_max_objects_on_a_large_listing() -> None:
    async with s3sim.Simulator(objects=12_000, layout="flat") as sim:
        with pytest.raises(TooManyObjects) as exc:
            await list_reference("s3://bk/flat", _config(sim), max_objects=11_999)
        assert exc.value.limit == 11_999
        summary, _, _ = await list_reference("s3://bk/flat", _config(sim), max_objects=12_000)
        assert summary.count == 12_000


@pytest.mark.slow
async def test_one_million_keys_digest() -> None:
    async with s3sim.Simulator(objects=1_000_000, layout="nested") as sim:
        summary, _, stats = await list_reference("s3://bk/dataset", _config(sim))
        assert (summary.digest, summary.count) == expected_digest(sim.space, "dataset/")
        assert stats.objects == 1_000_000


async def test_listings_in_one_process_share_one_botocore_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A botocore session per listing cost 0.2-1 s of CPU on the event loop
    each; at 64 concurrent clients that starved the gRPC accept loop until
    waiting calls were CANCELLED (bench/ingest.py). Three listings, one session."""
    import aiobotocore.session

    created: list[object] = []
    real_init = aiobotocore.session.AioSession.__init__

    def counting_init(self: object, *args: Any, **kwargs: Any) -> None:
        created.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(aiobotocore.session.AioSession, "__init__", counting_init)
    # None left from an earlier test on this loop (loops may be shared between tests).
    monkeypatch.setattr(_s3_http, "_SESSIONS", weakref.WeakKeyDictionary())
    async with s3sim.Simulator(objects=1_500, layout="flat") as sim:
        for _ in range(3):
            summary, _, _ = await list_reference("s3://bk/flat/", _config(sim), concurrency=4)
            assert (summary.digest, summary.count) == expected_digest(sim.space, "flat/")
    assert len(created) == 1
