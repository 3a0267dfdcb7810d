"""The simulator's stateful mode answers the blob sweep's requests as moto does.

``bench/gc.py --backend s3`` measures the sweep against ``s3sim.py
--stateful`` (moto is too slow to fill with 100,000 objects), so the
benchmark is only honest if the sweep sees the same answers from both: the
same script of the sweep's own calls (``services/manifest/sweeping.py``:
sorted listings, the dedup refresh's copy onto itself, HEAD rechecks,
DeleteObjects) runs against moto and against the simulator, and the two
transcripts must be equal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import s3sim  # bench/s3sim.py (bench/ is on pythonpath)
from aiobotocore.session import get_session

from depot.services.manifest import sweeping

PREFIX = "depot"


@pytest.fixture(scope="module")
def stateful_endpoint() -> Iterator[str]:
    with s3sim.start_simulator(stateful=True) as sim:
        yield sim.endpoint_url


def _blob(i: int) -> str:
    h = f"{i * 2654435761 % (1 << 32):08x}{i:024x}"
    return f"ent/blobs/xxh3_128/{h[:2]}/{h}"


async def _script(endpoint: str) -> list[Any]:
    """The sweep's requests, in the sweep's order; what each answered, with times made relative."""
    bucket = f"gc-{uuid.uuid4().hex[:12]}"
    out: list[Any] = []
    async with get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as s3:
        await s3.create_bucket(Bucket=bucket)
        blobs = [_blob(i) for i in range(120)]
        others = ["ent/manifests/ab/abcd", "ent.b/blobs/x", "ent/blobsx", "other/ent/blobs/y"]
        for i, key in enumerate(blobs + others):
            body = b"x" * (i % 7)
            await s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=body, Metadata={"n": str(i)})
        t0 = time.time()

        async def listing(prefix: str) -> list[tuple[str, int]]:
            got = []
            async for page in sweeping.iter_s3(s3, bucket, PREFIX, prefix):
                # Every LastModified is of this run, not a constant.
                assert all(t0 - 120 < o.mtime <= time.time() + 1 for o in page)
                got.append([(o.key, o.size) for o in page])
            return [x for page in got for x in page]

        out.append(await listing("ent/blobs/"))
        out.append(await listing("ent/manifests/"))
        # Pages of a listing resume after their continuation token.
        pages = []
        paginator = s3.get_paginator("list_objects_v2")
        async for resp in paginator.paginate(Bucket=bucket, Prefix=f"{PREFIX}/ent/", PaginationConfig={"PageSize": 50}):
            pages.append([(o["Key"], o["Size"]) for o in resp.get("Contents", ())])
        out.append(pages)
        resp = await s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/ent/", StartAfter=f"{PREFIX}/{blobs[0]}")
        out.append([o["Key"] for o in resp["Contents"]][:3])

        # The dedup refresh: HEAD, then a copy onto itself that keeps the metadata.
        key = f"{PREFIX}/{blobs[5]}"
        out.append(await sweeping.refresh_s3(s3, bucket, key, time.time() + 3600, {}))
        head = await s3.head_object(Bucket=bucket, Key=key)
        out.append((head["Metadata"], head["ContentLength"], head["LastModified"].timestamp() >= int(t0)))
        out.append(await sweeping.refresh_s3(s3, bucket, f"{PREFIX}/ent/blobs/missing", time.time(), {}))
        try:
            await s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key})
            out.append("copied onto itself")
        except s3.exceptions.ClientError as e:
            out.append(e.response["Error"]["Code"])

        # DeleteObjects, with and without the HEAD recheck, over present and absent keys.
        doomed = blobs[:70] + ["ent/blobs/never-stored"]
        future = time.time() + 3600
        done = await sweeping.delete_s3(s3, bucket, PREFIX, doomed[:35], future, 0.0, 8)
        out.append((sorted(done.keys), done.refreshed, done.errors))
        done = await sweeping.delete_s3(s3, bucket, PREFIX, doomed[35:], future, time.time(), 8)
        out.append((sorted(done.keys), done.refreshed, done.errors))
        # A key modified after the cutoff is kept by the recheck.
        done = await sweeping.delete_s3(s3, bucket, PREFIX, blobs[100:102], t0 - 3600, 0.0, 8)
        out.append((done.keys, done.refreshed, done.errors))
        out.append(await listing("ent/blobs/"))
        try:
            await s3.head_object(Bucket=bucket, Key=f"{PREFIX}/{blobs[0]}")
            out.append("still there")
        except s3.exceptions.ClientError as e:
            out.append(e.response["Error"]["Code"])
        # Deleted keys can be PUT again and are listed again.
        await s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{blobs[1]}", Body=b"again")
        out.append((await listing("ent/blobs/"))[:2])
    return out


def test_the_sweeps_requests_get_the_same_answers_as_from_moto(s3_endpoint: str, stateful_endpoint: str) -> None:
    moto = asyncio.run(_script(s3_endpoint))
    sim = asyncio.run(_script(stateful_endpoint))
    assert sim == moto
    # And the script exercised what it meant to: deletes happened, the recheck kept young keys.
    assert len(moto[0]) == 120 and len(moto[-3]) == 120 - 70 and moto[-2] == "404"
    assert moto[-4] == ([], [_blob(100), _blob(101)], [])


def test_an_oversized_or_malformed_delete_is_refused() -> None:
    store = s3sim.Simulator(stateful=True).store
    assert store is not None
    assert store.handle("PUT", "/b", {}, b"")[0] == 200
    body = "<Delete>" + "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001)) + "</Delete>"
    status, _, answer = store.handle("POST", "/b?delete", {}, body.encode())
    assert (status, b"MalformedXML" in answer) == (400, True)
    status, _, answer = store.handle("POST", "/b?delete", {}, b"<Delete><Object>")
    assert (status, b"MalformedXML" in answer) == (400, True)
    status, _, answer = store.handle("GET", "/nope?list-type=2", {}, b"")
    assert (status, b"NoSuchBucket" in answer) == (404, True)
