"""Issue 8, item 2: API keys come from the CSPRNG, never from the caller's key.

Keys made through CreateApiKey with a request_id were HMAC(caller key,
request_id): anyone with the caller's key and a database dump (request ids
are stored in plaintext) could recompute them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from support.world import World

from depot.metadata.v1 import metadata_pb2 as pb


def _old_derivation(caller_key: str, request_id: str) -> str:
    """How a key used to be made, to prove it no longer is."""
    raw = hmac.new(caller_key.encode(), b"depot api key\0" + request_id.encode(), hashlib.sha256).digest()
    return f"dpt_{raw[:6].hex()}_{base64.urlsafe_b64encode(raw[6:30]).decode().rstrip('=')}"


def test_keys_are_random_and_shown_once(world: World) -> None:
    bob = world["bob"]
    first = bob.CreateApiKey(pb.CreateApiKeyRequest(description="a", request_id="rid-one"))
    second = bob.CreateApiKey(pb.CreateApiKeyRequest(description="b", request_id="rid-two"))
    for made, rid in ((first, "rid-one"), (second, "rid-two")):
        assert made.key.startswith(f"dpt_{made.id}_")
        assert made.key != _old_derivation(bob.key, rid)
    # Unrelated keys: neither id nor secret shares anything.
    assert first.id != second.id
    assert first.key.split("_", 2)[2] != second.key.split("_", 2)[2]
    # A retry with the same request_id: the same key's id, no secret, no new key.
    again = bob.CreateApiKey(pb.CreateApiKeyRequest(description="a", request_id="rid-one"))
    assert (again.id, again.key, again.user) == (first.id, "", "entities/bob")
    listed = [k.id for k in bob.ListApiKeys(pb.ListApiKeysRequest()).keys if k.description in ("a", "b")]
    assert sorted(listed) == sorted([first.id, second.id])


def test_the_same_request_id_from_two_callers_gives_unrelated_keys(world: World) -> None:
    """A superuser making a key for bob and bob making his own with one request_id."""
    by_admin = world.admin.CreateApiKey(pb.CreateApiKeyRequest(user="entities/bob", request_id="shared"))
    by_bob = world["bob"].CreateApiKey(pb.CreateApiKeyRequest(request_id="shared"))
    assert by_admin.key and by_bob.key and by_admin.key != by_bob.key
    assert by_admin.key != _old_derivation(world.admin.key, "shared")
