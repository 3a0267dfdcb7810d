"""The S3 simulator serves real ETags: every body's md5 is the ETag its listing shows.

Reference downloads verify what they fetch against the recorded ETag, so a
benchmark of downloads is only honest if the simulator's bodies hash to it.
"""

from __future__ import annotations

import hashlib

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig

# Zero-byte objects (i % 97 == 0), both ends of the filler range, and ordinary ones.
INDICES = [0, 1, 2, 63, 64, 96, 97, 98, 194, 999, 1000, 4095, 65_535, 65_536, 99_999]


@pytest.mark.parametrize("layout", ["nested", "flat"])
@pytest.mark.parametrize("filler_max", [0, 100, 4096, 65536])
def test_every_body_hashes_to_its_etag_and_has_its_size(layout: str, filler_max: int) -> None:
    space = s3sim.KeySpace(100_000, layout, filler_max=filler_max)
    for i in INDICES:
        key = space.key(i)
        body = space.body(i)
        assert hashlib.md5(body).hexdigest() == space.etag(i, key) == space.etag_of(key), i
        assert len(body) == space.size(i)
        assert body.endswith(key.encode()) or i % 97 == 0
        assert len(body) <= filler_max + space.key_len
    assert space.size(0) == 0  # zero-byte objects exist
    assert [e for e, _ in space.etags_sizes(INDICES, [space.key(i) for i in INDICES])] == [
        hashlib.md5(space.body(i)).hexdigest() for i in INDICES
    ]
    if filler_max == 0:
        assert space.body(1) == space.key(1).encode()


def test_sizes_spread_over_the_filler_range() -> None:
    space = s3sim.KeySpace(10_000, "nested")
    sizes = [space.size(i) for i in range(10_000)]
    assert min(s for s in sizes if s) == space.key_len
    assert max(sizes) > 60_000
    assert 20_000 < sum(sizes) / len(sizes) < 45_000


def test_bad_filler_is_refused() -> None:
    with pytest.raises(ValueError, match="filler_max"):
        s3sim.KeySpace(10, filler_max=70_000)


async def test_downloaded_bodies_match_the_listed_etags_and_buckets_have_their_own_counts() -> None:
    async with s3sim.Simulator(objects=3000, layout="flat", buckets={"small": 250}) as sim:
        async with get_session().create_client(
            "s3",
            endpoint_url=sim.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=BotoConfig(s3={"addressing_style": "path"}),
        ) as c:
            listed = {}
            async for page in c.get_paginator("list_objects_v2").paginate(Bucket="bk"):
                listed.update({o["Key"]: (o["ETag"].strip('"'), o["Size"]) for o in page.get("Contents", [])})
            assert len(listed) == 3000
            for i in (0, 1, 97, 1234, 2999):
                key = sim.space.key(i)
                got = await c.get_object(Bucket="bk", Key=key)
                body = await got["Body"].read()
                assert (hashlib.md5(body).hexdigest(), len(body)) == listed[key]
                assert got["ETag"].strip('"') == listed[key][0]
            key = sim.space.key(1234)
            part = await (await c.get_object(Bucket="bk", Key=key, Range="bytes=10-99"))["Body"].read()
            assert part == sim.space.body(1234)[10:100]
            small = []
            async for page in c.get_paginator("list_objects_v2").paginate(Bucket="small"):
                small += [o["Key"] for o in page.get("Contents", [])]
            assert small == [sim.space.key(i) for i in range(250)]
            with pytest.raises(c.exceptions.NoSuchKey):
                await c.get_object(Bucket="small", Key=sim.space.key(250))
