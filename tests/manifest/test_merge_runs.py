"""Merging sorted manifest segments (include_manifests, listed references) by runs.

Against an oracle written the plain way: the union of the segments' entries
sorted by the UTF-8 bytes of their paths, and a refusal naming the path
whenever two segments hold the same one. Seeded random segments of up to a
few blocks each (a block is 4096 entries), so runs cross block boundaries.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from depot.native import ManifestReader, ManifestWriter
from depot.services.common.errors import InvalidArgument
from depot.services.manifest.manifests import _merge

DIGEST = "0123456789abcdef0123456789abcdef"


def _segment(path: Path, paths: set[str]) -> str:
    with open(path, "wb") as f:
        writer = ManifestWriter(f, "md5")
        for p in sorted(paths, key=str.encode):
            writer.add(p, "md5", DIGEST, len(p))
        writer.close()
    return str(path)


@pytest.mark.parametrize("seed", range(12))
def test_runs_give_the_sorted_union_and_refuse_a_shared_path(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    k = rnd.randint(1, 4)
    names = [f"{rnd.choice(['a', 'b', 'é', 'z/y'])}/{rnd.randint(0, 20_000)}" for _ in range(rnd.randint(0, 12_000))]
    parts: list[set[str]] = [set() for _ in range(k)]
    for n in names:
        parts[rnd.randrange(k)].add(n)
    shared = seed % 3 == 0 and k > 1 and bool(parts[0])
    if shared:
        parts[-1].add(sorted(parts[0])[len(parts[0]) // 2])
    else:  # a name drawn twice into two parts is shared too: keep it in the first only
        seen: set[str] = set()
        for part in parts:
            part -= seen
            seen |= part
    segments = [_segment(tmp_path / f"s{i}", part) for i, part in enumerate(parts)]

    out = io.BytesIO()
    if shared:
        with pytest.raises(InvalidArgument, match="duplicate manifest path"):
            _merge(segments, out, "md5")
        return
    summary = _merge(segments, out, "md5")
    out.seek(0)
    got = [e.path for e in ManifestReader(out)]
    want = sorted(set().union(*parts), key=str.encode)
    assert got == want
    assert summary.count == len(want)
