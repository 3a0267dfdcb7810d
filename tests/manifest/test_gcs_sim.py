"""gs:// listing at scale and under faults, against the GCS simulator (bench/gcssim.py)."""

from __future__ import annotations

import base64
import hashlib

import gcssim  # bench/gcssim.py (bench/ is on pythonpath)
import pytest
from support.gcs import list_gcs

from depot.services.common.errors import FailedPrecondition, PermissionDenied, S3Unavailable
from depot.services.manifest.gcs_http import GCSConfig


def _expected(sim: gcssim.GCSSimulator, root: str, name: str = "") -> tuple[str, int]:
    """W&B's artifact digest from the key formula alone: md5 over sorted ``path:md5Hash`` lines."""
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    pre = name + "/" if name else ""
    n = 0
    for key, etag, _size, _vid in sim.space.expected_entries():
        md5_hash = base64.b64encode(bytes.fromhex(etag)).decode()
        h.update(f"{pre}{key[len(root) :]}:{md5_hash}\n".encode())
        n += 1
    return h.hexdigest(), n


@pytest.mark.parametrize("layout", ["nested", "flat"])
async def test_listing_matches_key_formula(layout: str) -> None:
    async with gcssim.GCSSimulator(objects=4321, layout=layout) as sim:
        root = "dataset/" if layout == "nested" else "flat/"
        summary, entries, stats = await list_gcs(
            f"gs://bk/{root.rstrip('/')}", sim.endpoint_url, name="n", concurrency=8
        )
        assert (summary.digest, summary.count) == _expected(sim, root, "n")
        assert stats.units >= 5  # split for concurrency
        first = sim.space.key(0)
        assert entries[0].path == "n/" + first[len(root) :]
        assert entries[0].size == 0  # i = 0 is a zero-byte object
        assert entries[0].version_id == str(gcssim.generation_of(first))
        assert sim.stats.list_pages >= 5  # 1000-object pages


async def test_composite_object_fails_naming_it() -> None:
    async with gcssim.GCSSimulator(objects=3000, layout="flat", composite_every=2500) as sim:
        bad = sim.space.key(2499)
        with pytest.raises(FailedPrecondition, match=f"gs://bk/{bad} is a composite object"):
            await list_gcs("gs://bk/flat", sim.endpoint_url, concurrency=4)
        with pytest.raises(FailedPrecondition, match="composite"):
            await list_gcs(f"gs://bk/{bad}", sim.endpoint_url)
        # An object beside it is fine.
        summary, _, _ = await list_gcs(f"gs://bk/{sim.space.key(2498)}", sim.endpoint_url)
        assert summary.count == 1


async def test_denied_bucket_is_a_clear_permission_error() -> None:
    async with gcssim.GCSSimulator(objects=10, layout="flat", denied=("locked",)) as sim:
        with pytest.raises(PermissionDenied, match=r"GCS denied access to bucket 'locked' \(HTTP 403 forbidden"):
            await list_gcs("gs://locked/flat", sim.endpoint_url)


async def test_dead_store_fails_within_the_stall_timeout() -> None:
    async with gcssim.GCSSimulator(objects=10, layout="flat", error500_rate=1.0) as sim:
        config = GCSConfig(endpoint_url=sim.endpoint_url, backoff_base=0.005, backoff_max=0.05, stall_timeout=0.5)
        with pytest.raises(S3Unavailable, match=r"gs://bk/flat: GCS .* \(bucket 'bk', last error 500: HTTP 500"):
            await list_gcs("gs://bk/flat", sim.endpoint_url, config=config)


async def test_throttling_is_retried_to_completion() -> None:
    async with gcssim.GCSSimulator(objects=4000, layout="flat", slowdown_rate=0.3, seed=7) as sim:
        summary, _, stats = await list_gcs("gs://bk/flat", sim.endpoint_url, concurrency=4)
        assert (summary.digest, summary.count) == _expected(sim, "flat/")
        assert stats.throttles > 0
