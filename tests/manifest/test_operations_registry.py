"""The registry of reference listings (operations.py) on a real event loop.

The listings here are coroutines that wait on events the test sets, so each
case decides exactly when a listing ends and how; what is checked is how many
listings the registry started and what each attached stream saw.
"""

from __future__ import annotations

import asyncio

import pytest

from depot.services.common.errors import InvalidArgument, ResourceExhausted, Unavailable
from depot.services.manifest.manifests import StoredManifest
from depot.services.manifest.operations import Operations, OperationSettings, Progress
from depot.services.manifest.references import ListingProgress

RESULT = StoredManifest("team", "ab" * 32, "d", "md5", 1, 1, "token", 0)


class Listings:
    """Starts listings that end when told (``release``) or fail with ``errors`` in turn."""

    def __init__(self, errors: list[BaseException] | None = None, slow_cancel: bool = False) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.errors = list(errors or [])
        self.slow_cancel = slow_cancel
        self.stopping = asyncio.Event()

    async def start(self, progress: ListingProgress) -> StoredManifest:
        self.started += 1
        error = self.errors.pop(0) if self.errors else None
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            if self.slow_cancel:
                # Stopping takes a while (S3 requests in flight): the window
                # in which a new attach must not follow this listing.
                self.stopping.set()
                await asyncio.sleep(0.2)
            raise
        if error is not None:
            raise error
        return RESULT


async def _follow(ops: Operations, listings: Listings, request_id: str, entity: str = "team") -> list[Progress]:
    async with ops.attach(entity, request_id, b"header", listings.start) as messages:
        return [p async for p in messages]


def _settings(**kw: float) -> OperationSettings:
    return OperationSettings(**{"grace_s": 0.05, "interval_s": 0.01, **kw})  # type: ignore[arg-type]


async def test_one_entity_runs_a_bounded_number_of_listings() -> None:
    ops = Operations(_settings(max_per_entity=3))
    listings = Listings()
    followers = [asyncio.create_task(_follow(ops, listings, f"r{i}")) for i in range(3)]
    await asyncio.sleep(0.05)
    with pytest.raises(ResourceExhausted, match="3 reference listings of 'team' are running"):
        await _follow(ops, listings, "one-too-many")
    # Another entity is not held up by the first one's listings.
    other = asyncio.create_task(_follow(ops, listings, "r0", entity="other"))
    await asyncio.sleep(0.05)
    assert listings.started == 4
    listings.release.set()
    for t in [*followers, other]:
        assert (await t)[-1].manifest == RESULT
    # Finished listings do not count: the entity may start again.
    assert (await _follow(ops, listings, "after"))[-1].manifest == RESULT
    await ops.close()


async def test_a_retryable_failure_is_not_replayed_but_a_refusal_is() -> None:
    ops = Operations(_settings())
    listings = Listings(errors=[Unavailable("S3 is down"), InvalidArgument("bad key", field="x")])
    listings.release.set()
    with pytest.raises(Unavailable):
        await _follow(ops, listings, "flaky")
    # Calling again lists again (and this time is refused for good).
    with pytest.raises(InvalidArgument):
        await _follow(ops, listings, "flaky")
    assert listings.started == 2
    with pytest.raises(InvalidArgument):
        await _follow(ops, listings, "flaky")
    assert listings.started == 2, "a refusal is kept and replayed, not listed again"
    await ops.close()


async def test_an_attach_while_an_abandoned_listing_stops_starts_anew() -> None:
    ops = Operations(_settings())
    listings = Listings(slow_cancel=True)
    first = asyncio.create_task(_follow(ops, listings, "same"))
    await asyncio.sleep(0.02)
    first.cancel()  # the only follower leaves; the grace runs out and the listing is cancelled
    with pytest.raises(asyncio.CancelledError):
        await first
    await listings.stopping.wait()
    # The old listing is still stopping: this stream must not end CANCELLED with it.
    listings.release.set()
    assert (await _follow(ops, listings, "same"))[-1].manifest == RESULT
    assert listings.started == 2
    await asyncio.sleep(0.3)  # the old listing has stopped now; the new result stays
    assert (await _follow(ops, listings, "same"))[-1].manifest == RESULT
    assert listings.started == 2
    await ops.close()
