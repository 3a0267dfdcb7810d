"""The metadata service's auth and role caches when full, on a real database.

A full cache must keep its hot entries (it evicts the least recently used,
never everything at once), and must never stretch the revocation bound:
a key revoked or a role removed through this process is refused at once;
through another replica (here: the database changed behind the cache's back)
within AUTH_CACHE_S, whatever the cache holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from depot.services.common.errors import Unauthenticated
from depot.services.metadata import access as access_module
from depot.services.metadata import db
from depot.services.metadata.access import AUTH_CACHE_S, Access, Principal, Role
from depot.services.metadata.accounts import Accounts
from depot.services.metadata.pages import PageTokens

SMALL = 4  # entries per cache in these tests: full after a handful of users


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[db.Database]:
    pool = await db.create_pool(database_url, min_size=1, max_size=4)
    try:
        yield db.Database(pool)
    finally:
        await pool.close()


async def _users(access: Access, n: int) -> list[tuple[Principal, str]]:
    """``n`` users, each with a key: (principal, raw key)."""
    out = []
    for i in range(n):
        name = f"user{i}"
        user_id = await access.create_user(name)
        out.append((Principal(user_id, name, False), str(await access.create_key(user_id))))
    return out


async def test_a_full_auth_cache_keeps_the_hot_key_and_revocation_is_immediate(
    database: db.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_module, "AUTH_CACHE_MAX", SMALL)
    monkeypatch.setattr(access_module, "AUTH_CACHE_S", 3600.0)  # time is not what expires entries here
    access = Access(database)
    admin = Principal(await access.create_user("root", superuser=True), "root", True)
    (hot_user, hot), *others = await _users(access, 3 * SMALL)
    await access.authenticate(hot)
    stats = access._auth_cache.stats
    for _, key in others:  # three times the cache's size of distinct keys
        await access.authenticate(key)
        assert await access.authenticate(hot) == hot_user
    assert stats.evictions == len(others) - (SMALL - 1)
    assert stats.hits == len(others)  # every hot lookup was a hit: never flushed

    # Revoked through this process: refused at once, though an hour of cache remains.
    accounts = Accounts(database, access, PageTokens(b"test"))
    await accounts.revoke_key(admin, hot.split("_")[1])
    with pytest.raises(Unauthenticated):
        await access.authenticate(hot)


async def test_a_full_cache_honours_changes_made_elsewhere_within_the_bound(
    database: db.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_module, "AUTH_CACHE_MAX", SMALL)
    access = Access(database)
    users = await _users(access, 2 * SMALL)
    team = await database.fetchval("INSERT INTO entities (name, kind) VALUES ('team', 'team') RETURNING id")
    for who, key in users:
        await database.execute(
            "INSERT INTO memberships (entity_id, user_id, role) VALUES ($1, $2, 'member')", team, who.user_id
        )
        await access.authenticate(key)
        found = await access.lookup(who, "team")
        assert found is not None and found.role == Role.MEMBER
    assert len(access._auth_cache) == SMALL and len(access._role_cache) == SMALL
    (who, key) = users[-1]  # the most recently used: certainly still cached
    assert who.user_id == (await access.authenticate(key)).user_id

    # Another replica revokes the key and removes the membership: this
    # process sees neither change, so only its cache's deadline can end them.
    await database.execute("UPDATE api_keys SET revoke_time = now() WHERE user_id = $1", who.user_id)
    await database.execute("DELETE FROM memberships WHERE user_id = $1", who.user_id)
    await asyncio.sleep(AUTH_CACHE_S)
    with pytest.raises(Unauthenticated):
        await access.authenticate(key)
    found = await access.lookup(who, "team")
    assert found is not None and found.role is None
