"""Key-space partitioning for concurrent S3 listing (private to ``s3_listing``).

The keys under a prefix are split into *units*, each a contiguous interval of
the (UTF-8 ordered) key space, listed independently:

- ``PrefixUnit(p)``: every key that starts with ``p`` (listed with ``Prefix=p``,
  so a unit's listing never runs into its neighbour's keys);
- ``ExactUnit(k)``: the single key ``k`` (a key that is also a split prefix).

Splitting a unit ``p`` whose first page is truncated:

1. Take its first key ``k`` (beyond ``p`` itself). A ``max-keys=1`` probe
   ``StartAfter = q + U+10FFFF`` returns the first key that does *not* start
   with ``q`` (for any ``q`` a prefix of ``k``); when it returns nothing, every
   key of the unit starts with ``q``. A binary search over ``len(q)`` with a
   few parallel probes per round finds the longest such ``q`` = ``P``: the
   unit's real common prefix (``dataset/part-0`` for ``dataset/``).
2. The children of ``P`` are the distinct characters ``c`` following ``P``.
   They are found by probes ``StartAfter = P + c + U+10FFFF`` (each returns the
   first key of the next child), sent in parallel for a candidate alphabet
   (characters seen in the first page, widened to their class: digits and hex,
   a–z, A–Z) and repeated for any newly found child until every known child has
   been probed — at which point the child set is provably complete (the first
   child is known, and every known child's successor is known).

The result replaces ``p`` by ``[Exact(p)] [Exact(P)] Prefix(P+c1) … Prefix(P+cn)``,
in key order. Nested layouts descend directory levels this way (a delimiter
fan-out that also works inside one directory), flat layouts split on the key
alphabet. Units are expanded level by level until there are enough of them
for the requested concurrency.
"""

from __future__ import annotations

import asyncio
import dataclasses
import string
from typing import Any

__all__ = ["ExactUnit", "PrefixUnit", "plan_units"]

_MAX = "\U0010ffff"  # sorts after every character a key can hold
_MAX_LEVELS = 12
_DIGITS_HEX = set(string.digits + "abcdef")
_LOWER = set(string.ascii_lowercase)
_UPPER = set(string.ascii_uppercase)


@dataclasses.dataclass
class ExactUnit:
    key: str


@dataclasses.dataclass
class PrefixUnit:
    prefix: str
    # The unit's first page (page, body) when already fetched by the planner.
    first: tuple[Any, bytes] | None = None
    splittable: bool = True


def _sample(page: Any, versioned: bool) -> list[str]:
    keys = page.keys() if page.count else []
    if versioned and page.last_key and (not keys or keys[-1] != page.last_key):
        keys.append(page.last_key)
    return keys


async def _probe(http: Any, prefix: str, after: str, versioned: bool) -> str | None:
    """The first key with ``prefix`` sorting after ``after`` (any kind, delete markers too)."""
    page, _ = await http.list_page(prefix, versioned=versioned, after=after, max_keys=1)
    if versioned:
        return page.last_key or (page.key(0) if page.count else None) or None
    return page.key(0) if page.count else None


async def _skip_child(http: Any, parent: str, child: str, versioned: bool) -> str | None:
    """First key under ``parent`` after every key that starts with ``child``."""
    after = child + _MAX
    while True:
        r = await _probe(http, parent, after, versioned)
        if r is None or not r.startswith(child):
            return r
        after = r + _MAX  # a key containing U+10FFFF itself: keep skipping


def _widen(chars: set[str]) -> set[str]:
    out = set(chars)
    if chars & _DIGITS_HEX:
        out |= _DIGITS_HEX
    if chars & _LOWER:
        out |= _LOWER
    if chars & _UPPER:
        out |= _UPPER
    return out


async def _split(http: Any, unit: PrefixUnit, page: Any, versioned: bool) -> list[Any]:
    p = unit.prefix
    samples = _sample(page, versioned)
    out: list[Any] = []
    if p and p in samples:
        out.append(ExactUnit(p))
    k = next((s for s in samples if s > p), None)
    if k is None:
        k = await _probe(http, p, p, versioned) if p else None
        if k is None:
            return out + [PrefixUnit(p, first=None, splittable=False)] if not out else out
    # 1. Longest common prefix P of the unit (beyond p), by parallel binary search.
    lo, hi = len(p), len(k) + 1  # all keys start with k[:lo]; not (known) with k[:hi]
    seen_chars = {s[len(p)] for s in samples if len(s) > len(p) and s.startswith(p)}
    first_round = True
    while hi - lo > 1:
        if first_round:
            cands = [lo + 1]
        else:
            step = max(1, (hi - lo) // 8)
            cands = sorted({min(hi - 1, lo + 1 + t * step) for t in range(8)})
        res = await asyncio.gather(*(_probe(http, p, k[:L] + _MAX, versioned) for L in cands))
        new_lo = lo
        new_hi = hi
        for L, r in zip(cands, res):
            if r is None:
                new_lo = max(new_lo, L)
        for L, r in zip(cands, res):
            if r is not None and new_lo < L < new_hi:
                new_hi = L
        lo, hi = new_lo, new_hi
        if first_round and new_lo == len(p):
            break  # the unit already branches right after p
        first_round = False
    P = k[:lo]
    if P == k and P != p:
        out.append(ExactUnit(P))
        k2 = await _probe(http, P, P, versioned)
        if k2 is None:
            return out
        k = k2
    # 2. Children of P: distinct characters following P.
    known = {k[len(P)]} | {s[len(P)] for s in samples if len(s) > len(P) and s.startswith(P)}
    if P == p:
        known |= seen_chars
    probed: set[str] = set()
    cands_set = _widen(known)
    while True:
        todo = sorted(cands_set - probed)
        if not todo:
            break
        res = await asyncio.gather(*(_skip_child(http, P, P + c, versioned) for c in todo))
        probed.update(todo)
        for r in res:
            if r is not None and len(r) > len(P):
                known.add(r[len(P)])
        cands_set = known - probed
    # ``known`` may hold candidates that are not children only if they came from
    # samples — they all did occur in keys, so every element is a real child.
    out.extend(PrefixUnit(P + c) for c in sorted(known))
    return out


async def _expand(http: Any, unit: PrefixUnit, versioned: bool) -> list[Any]:
    page, body = await http.list_page(unit.prefix, versioned=versioned)
    if not page.is_truncated:
        return [PrefixUnit(unit.prefix, first=(page, body), splittable=False)]
    children = await _split(http, unit, page, versioned)
    if len(children) <= 1 and all(isinstance(c, PrefixUnit) for c in children):
        return [PrefixUnit(unit.prefix, first=(page, body), splittable=False)]
    return children


async def plan_units(http: Any, prefix: str, versioned: bool, *, target: int) -> list[Any]:
    """Units covering exactly the keys under ``prefix``, in key order."""
    units: list[Any] = [PrefixUnit(prefix)]
    for _level in range(_MAX_LEVELS):
        pending = [u for u in units if isinstance(u, PrefixUnit) and u.splittable and u.first is None]
        big = [u for u in units if isinstance(u, PrefixUnit) and (u.first is None or u.first[0].is_truncated)]
        if not pending or (len(big) >= target and _level > 0):
            break
        results = await asyncio.gather(*(_expand(http, u, versioned) for u in pending))
        by_id = {id(u): r for u, r in zip(pending, results)}
        new: list[Any] = []
        for u in units:
            new.extend(by_id.get(id(u), [u]))
        units = new
    return units
