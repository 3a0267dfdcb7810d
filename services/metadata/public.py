"""What another service may import of the metadata service: the GC's needs, nothing else.

The GC sweeps metadata's tables and admits the callers metadata knows, so
it opens metadata's database, authenticates keys and checks roles with
metadata's :class:`Access` (and its per-process cache), and runs the
statements metadata keeps for it in ``housekeeping``. The import contract
(pyproject ``[tool.importlinter]``, ``service-layers``) lets the GC cross
into metadata through this module alone, so what it depends on is listed
here, in one place.
"""

from __future__ import annotations

import asyncpg

from . import housekeeping, roots
from .access import ADMIN, Access, Principal
from .db import Database, create_pool

__all__ = ["ADMIN", "Access", "Principal", "access_on", "create_pool", "housekeeping", "roots"]


def access_on(pool: asyncpg.Pool) -> Access:
    """Authentication and roles over metadata's database on ``pool``."""
    return Access(Database(pool))
