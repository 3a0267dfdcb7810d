"""Numeric bounds of the wire format."""

from __future__ import annotations

# Sizes and counts travel as protobuf int64 and are stored as PostgreSQL
# bigint: a value past this fails in both, so it is refused before either.
INT64_MAX = (1 << 63) - 1
