"""decode_block building a caller's entry objects (``EntryMaker``), on both implementations."""

from __future__ import annotations

import gc
import io
import weakref
from dataclasses import dataclass, field

import pytest
from support.native_impls import Impl

from depot.native._manifest_py import ManifestEntry

SOURCE = object()


@dataclass(slots=True, weakref_slot=True)
class Entry:
    """Shaped like the SDK's entry: its own field order, two extra slots."""

    path: str
    digest: str
    algorithm: str
    size: int
    ref: str = ""
    version_id: str = ""
    extra: str = ""
    local_path: str | None = "unset"
    source: object = field(default=None, compare=False)

    def __post_init__(self) -> None:
        raise AssertionError("decode_block must not call __init__")


def _raw(impl: Impl, n: int) -> bytes:
    out = io.BytesIO()
    w = impl.manifest.ManifestWriter(out, "md5", block_entries=n)
    w.add_many(
        ManifestEntry(f"d/ü{i:04d}", "etag", f"{i:032x}", i * 2**40, f"s3://b/{i}", "v" * (i % 2)) for i in range(n)
    )
    w.close()
    f = io.BytesIO(out.getvalue())
    (block,) = impl.manifest.scan_blocks(f)
    return bytes(impl.manifest.read_block(f, block.offset))


def test_decoded_entries_are_the_callers_class(impl: Impl) -> None:
    make = impl.manifest.EntryMaker(Entry, local_path=None, source=SOURCE)
    raw = _raw(impl, 50)
    got = impl.manifest.decode_block(raw, make)
    plain = impl.manifest.decode_block(raw)
    assert [type(e) for e in got] == [Entry] * 50
    assert [(e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id, e.extra) for e in got] == plain
    assert all(e.local_path is None and e.source is SOURCE for e in got)
    # Ordinary objects: mutable, weakly referenceable, collected when dropped.
    got[0].size = 7
    assert got[0].size == 7
    ref = weakref.ref(got[0])
    del got
    assert ref() is None


def test_implementations_agree(c_impl: Impl, py_impl: Impl) -> None:
    raw = _raw(py_impl, 300)
    c = c_impl.manifest.decode_block(raw, c_impl.manifest.EntryMaker(Entry, local_path=None, source=SOURCE))
    py = py_impl.manifest.decode_block(raw, py_impl.manifest.EntryMaker(Entry, local_path=None, source=SOURCE))
    assert c == py
    assert [e.local_path for e in c] == [e.local_path for e in py]


def test_the_maker_builds_one_entry_as_decode_does(impl: Impl) -> None:
    make = impl.manifest.EntryMaker(Entry, source=SOURCE)
    e = make("p", "md5", "d", 3, version_id="v")
    assert (e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id, e.extra) == ("p", "md5", "d", 3, "", "v", "")
    assert e.source is SOURCE
    # A slot neither decoded nor fixed stays unset.
    with pytest.raises(AttributeError):
        _ = e.local_path


class NoSlots:
    path = digest = algorithm = size = ref = version_id = extra = None


class Derived(Entry):
    __slots__ = ("note",)

    @property
    def source(self) -> object:  # type: ignore[override]
        return None


class OwnNew(Entry):
    __slots__ = ()

    def __new__(cls) -> OwnNew:
        return super().__new__(cls)


@pytest.mark.parametrize(
    ("cls", "fixed", "message"),
    [
        (NoSlots, {}, "NoSlots.path is not a slot"),
        (Entry, {"nope": 1}, "Entry.nope is not a slot"),
        (Derived, {"source": 1}, "Derived.source is not a slot"),
        (OwnNew, {}, "__new__ is object.__new__"),
        (int, {}, "__new__ is object.__new__"),
    ],
)
def test_refuses_what_it_cannot_fill(impl: Impl, cls: type, fixed: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        impl.manifest.EntryMaker(cls, **fixed)


def test_derived_slots_are_filled(impl: Impl) -> None:
    make = impl.manifest.EntryMaker(Derived, note="n")
    (e, *_) = impl.manifest.decode_block(_raw(impl, 3), make)
    assert type(e) is Derived and e.note == "n" and e.path == "d/ü0000"


def test_compiled_entries_are_left_to_reference_counting(c_impl: Impl) -> None:
    # Decoded entries hold no container that could close a cycle, so the compiled decoder
    # leaves them out of the cyclic GC (walking them cost a third of a large read's CPU);
    # they are still freed as soon as the last reference goes.
    make = c_impl.manifest.EntryMaker(Entry, local_path=None, source=SOURCE)
    got = c_impl.manifest.decode_block(_raw(c_impl, 20), make)
    plain = c_impl.manifest.decode_block(_raw(c_impl, 20))
    assert not any(gc.is_tracked(e) for e in got)
    assert not any(gc.is_tracked(e) for e in plain)
    refs = [weakref.ref(e) for e in got]
    del got
    assert all(r() is None for r in refs)
