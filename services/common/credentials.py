"""API keys on the wire and the internal manifest token.

Callers send ``authorization: Bearer <key>`` as gRPC metadata. Keys look like
``dpt_<id>_<secret>``: the id finds the row, only SHA-256 of the secret is
stored, so a leaked database does not leak usable keys.

The manifest token is an HMAC the manifest service puts on every manifest it
stores; the metadata service commits a version only with a valid token, so a
client cannot claim a digest or size the manifest service never computed.
The token also signs when the build began, and expires: the blob collector
spares a key only while it was refreshed within its grace period, and the
manifest service refreshes a build's blobs by half of it (docs/gc.md), so a
token is honoured for half the grace period at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import ErrorReason, FailedPrecondition, InvalidArgument, Unauthenticated

KEY_PREFIX = "dpt_"

# A revoked key is refused by every service within this many seconds of the
# revocation's commit: the metadata service's auth cache holds a key at most
# half of it, the manifest service's CheckAccess cache the other half.
REVOKE_WITHIN_S = 1.0

# How far the manifest service's clock may run ahead of the metadata
# service's: a token dated further in the future is refused, since it would
# outlive its age limit by as much.
MANIFEST_CLOCK_SKEW_S = 60.0


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{KEY_PREFIX}{self.key_id}_{self.secret}"

    @property
    def secret_sha256(self) -> bytes:
        return hashlib.sha256(self.secret.encode()).digest()


def new_api_key() -> ApiKey:
    return ApiKey(secrets.token_hex(6), secrets.token_urlsafe(24))


def parse_api_key(raw: str) -> ApiKey:
    if not raw.startswith(KEY_PREFIX):
        raise Unauthenticated("malformed API key")
    key_id, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        raise Unauthenticated("malformed API key")
    return ApiKey(key_id, secret)


def bearer_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The API key sent with a call; UNAUTHENTICATED when there is none."""
    for k, v in metadata or ():
        if k == "authorization":
            value = v.decode() if isinstance(v, bytes) else v
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization metadata must be 'Bearer <api key>'")
    raise Unauthenticated("missing API key: send 'authorization: Bearer <api key>' metadata")


def _token_message(fields: Sequence[object]) -> bytes:
    return "\n".join(str(f) for f in fields).encode()


def sign_manifest(secret: bytes, *fields: object) -> str:
    return hmac.new(secret, _token_message(fields), hashlib.sha256).hexdigest()


def verify_manifest(secret: bytes, token: str, *fields: object) -> None:
    expected = sign_manifest(secret, *fields)
    # As bytes: compare_digest refuses str holding non-ASCII (a TypeError, INTERNAL).
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise InvalidArgument(
            "manifest token does not match its fields; create the manifest through the manifest service",
            field="manifest.token",
        )


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} seconds"


def check_manifest_age(create_time_ms: int, max_age_s: float, now_s: float) -> None:
    """Refuses a (verified) token whose build began more than ``max_age_s``
    before ``now_s``, or that is dated beyond the allowed clock skew ahead."""
    age_s = now_s - create_time_ms / 1000
    if age_s > max_age_s:
        raise FailedPrecondition(
            f"manifest built more than {_duration(max_age_s)} ago (its blobs may have been collected); "
            "log the artifact again",
            field="manifest.create_time_unix_ms",
            reason=ErrorReason.MANIFEST_EXPIRED,
        )
    if -age_s > MANIFEST_CLOCK_SKEW_S:
        raise FailedPrecondition(
            f"manifest token is dated {_duration(-age_s)} in the future, beyond the "
            f"{_duration(MANIFEST_CLOCK_SKEW_S)} of clock skew allowed; "
            "check the clocks of the manifest and metadata servers",
            field="manifest.create_time_unix_ms",
        )
