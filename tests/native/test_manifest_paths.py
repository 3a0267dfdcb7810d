"""ManifestWriter(check_paths=True): the entry-path rules, checked natively while writing.

Both implementations must refuse exactly what depot.core.entry_paths.check_entry_path
refuses, with the same message, in add() and in add_page() (the S3 listing's path).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.core.entry_paths import check_entry_path
from depot.core.errors import InvalidValue
from depot.native._manifest_py import ManifestError

CORPUS = [
    "a",
    "a/b",
    "dir/file.txt",
    "ü/日本/😀",
    "a..b/..c/c..",
    ".hidden/x",
    "a:b",
    "é:x",
    "x" * 255,
    "/".join(["y" * 255] * 16),
    "a//b",
    "a/b/",
    "/abs",
    "C:/win",
    "../x",
    "a/../b",
    "..",
    "./x",
    "a/./b",
    ".",
    "",
    "a\0b",
    "a\nb",
    "tab\there",
    "del\x7f",
    "c1\x85x",
    "c1\x9f",
    "\xa0ok",
    "x" * 256,
    "a/" + "z" * 256 + "/b",
    "/".join(["y" * 255] * 17),
    "é" * 128,
    "lone\udcffsurrogate",
    "\ud800",
]


def _expected(path: str) -> str | None:
    try:
        check_entry_path(path)
    except InvalidValue as e:
        return str(e)
    return None


def _added(impl: Impl, path: str) -> str | None:
    w = impl.manifest.ManifestWriter(io.BytesIO(), "md5", check_paths=True)
    try:
        w.add(path, "md5", "d", 1)
    except ManifestError as e:
        return str(e)
    return None


@pytest.mark.parametrize("path", CORPUS)
def test_add_refuses_what_check_entry_path_refuses(impl: Impl, path: str) -> None:
    assert _added(impl, path) == _expected(path)


def test_paths_unchecked_by_default(impl: Impl) -> None:
    w = impl.manifest.ManifestWriter(io.BytesIO(), "md5")
    w.add("a//b", "md5", "d", 1)  # the streamed-entry path checks with field names itself
    assert w.close().count == 1


def _page(impl: Impl, keys: list[str]) -> object:
    contents = "".join(
        f"<Contents><Key>{k}</Key><ETag>&quot;e{i}&quot;</ETag><Size>{i}</Size></Contents>" for i, k in enumerate(keys)
    )
    body = f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>{contents}</ListBucketResult>'
    return impl.s3page.parse_list_page(body.encode())


PAGE_KEYS = [
    ["pre/a", "pre/b//c"],
    ["pre/a", "pre/../x"],
    ["pre/./x"],
    ["pre/x/"],
    ["pre/ok", "pre/" + "q" * 256],
    ["pre/tab&#9;x"],
    ["pre/a", "pre/b", "pre/c"],
]


@pytest.mark.parametrize("keys", PAGE_KEYS)
def test_add_page_checks_every_built_path(impl: Impl, keys: list[str]) -> None:
    page = _page(impl, keys)
    paths = ["n/" + page.key(i)[4:] for i in range(page.count)]  # type: ignore[attr-defined]
    problems = [p for p in map(_expected, paths) if p]
    w = impl.manifest.ManifestWriter(io.BytesIO(), "md5", check_paths=True)
    if problems:
        with pytest.raises(ManifestError) as e:
            w.add_page(page, 4, "n/", "s3://b/")
        assert str(e.value) == problems[0]
    else:
        w.add_page(page, 4, "n/", "s3://b/")
        assert w.close().count == len(keys)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("ab./:\0\n\x85é"), max_size=12))
def test_agree_with_check_entry_path(path: str) -> None:
    for impl in IMPLS:
        assert _added(impl, path) == _expected(path), impl.name
