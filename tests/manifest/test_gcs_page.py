"""The GCS listing-page parser: the compiled one and its twin accept, reject and report alike."""

from __future__ import annotations

import importlib
import io
import json
import os
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import depot.native
from depot.native import ManifestReader, ManifestWriter

NO_EXT = bool(os.environ.get("DEPOT_NO_EXTENSIONS"))
# Imported directly: a missing build fails here rather than testing the twin twice.
IMPLS: list[ModuleType] = [importlib.import_module("depot.native._gcspage_py")] + (
    [] if NO_EXT else [importlib.import_module("depot.native._gcspage")]
)
MD5 = "XUFAKrxLKna5cZ2REBfFkg=="


def _outcome(mod: ModuleType, body: bytes) -> Any:
    try:
        p = mod.parse_gcs_page(body)
    except mod.GCSPageError as e:
        return ("error", str(e))
    rows = [(p.key(i), p.md5_hash(i), p.generation(i), p.crc32c(i), p.size(i)) for i in range(p.count)]
    return (rows, p.next_page_token, p.is_truncated, p.last_key, p.first_without_md5, p._raw())


def _same(body: bytes) -> Any:
    outs = [_outcome(m, body) for m in IMPLS]
    assert all(o == outs[0] for o in outs), outs
    return outs[0]


def test_compiled_parser_is_loaded() -> None:
    if not NO_EXT:
        assert depot.native.GCSPAGE_COMPILED


def test_a_page_with_full_resources_and_escapes() -> None:
    doc = {
        "kind": "storage#objects",
        "nextPageToken": "tok\u00e9",
        "prefixes": ["a/"],
        "items": [
            {
                "kind": "x",
                "name": 'd/\u00e9t\u00e9 "q"',
                "size": "12",
                "md5Hash": MD5,
                "crc32c": "AAAAAA==",
                "generation": "1700000000000001",
                "acl": [{"role": "OWNER", "n": [1, 2.5e3, None, True]}],
            },
            {"name": "d/empty", "size": 0, "generation": 7, "md5Hash": MD5},
            {"name": "d/composite", "size": "5", "crc32c": "abc="},
            {"name": "d/\U0001f600", "size": "0009", "md5Hash": MD5, "md5Hash2": {"x": {}}},
        ],
    }
    rows, token, truncated, last, no_md5, _ = _same(json.dumps(doc).encode())
    assert rows == [
        ('d/\u00e9t\u00e9 "q"', MD5, "1700000000000001", "AAAAAA==", 12),
        ("d/empty", MD5, "7", "", 0),
        ("d/composite", "", "", "abc=", 5),
        ("d/\U0001f600", MD5, "", "", 9),
    ]
    assert (token, truncated, last, no_md5) == ("tok\u00e9", True, "d/\U0001f600", 2)
    # ensure_ascii=False: the same page in raw UTF-8.
    assert _same(json.dumps(doc, ensure_ascii=False).encode())[0] == rows


@pytest.mark.parametrize(
    "body,message",
    [
        (b"", "invalid JSON"),
        (b"\xef\xbb\xbf{}", "invalid JSON"),
        (b'{"items": []} x', "invalid JSON"),
        (b'{"items": [NaN]}', "invalid JSON"),
        (b'{"a": "\xed\xa0\x80"}', "invalid JSON"),  # an encoded surrogate is not UTF-8
        (b'{"a": "tab\there"}', "invalid JSON"),
        (b'{"a": 01}', "invalid JSON"),
        (b"[" * 65 + b"]" * 65, "invalid JSON"),
        (b"[]", "the top level is not an object"),
        (b'{"error": {"code": 403, "message": "no"}, "items": 3}', "GCS error 403: no"),
        (b'{"nextPageToken": 5}', "nextPageToken is not a string"),
        (b'{"nextPageToken": "\\ud800"}', "nextPageToken is not valid Unicode"),
        (b'{"items": {}}', "items is not an array"),
        (b'{"items": [{"name": "a", "size": "1"}, 3]}', "items[1] is not an object"),
        (b'{"items": [{"size": "1"}]}', "items[0] has no name"),
        (b'{"items": [{"name": "", "size": "1"}]}', "items[0] has no name"),
        (b'{"items": [{"name": "\\udc00", "size": "1"}]}', "items[0].name is not valid Unicode"),
        (b'{"items": [{"name": "a", "size": "-1"}]}', "bad or missing size for object 'a'"),
        (b'{"items": [{"name": "a", "size": 1.0}]}', "bad or missing size for object 'a'"),
        (b'{"items": [{"name": "a", "size": "9223372036854775808"}]}', "bad or missing size"),
        (b'{"items": [{"name": "a", "size": "1", "generation": "x"}]}', "bad generation for object 'a'"),
        (b'{"items": [{"name": "a", "size": "1", "md5Hash": 3}]}', "md5Hash of object 'a' is not a string"),
        (b'{"items": [{"name": "a", "size": "1", "crc32c": []}]}', "crc32c of object 'a' is not a string"),
        (b'{"items": [{"name": "a", "size": "1", "md5Hash": "abc"}]}', "md5Hash of object 'a' is not a base64 md5"),
        (b'{"items": [{"name": "a", "size": "1", "crc32c": "\\ud800x"}]}', "crc32c of object 'a' is not valid"),
    ],
)
def test_rejections_match(body: bytes, message: str) -> None:
    out = _same(body)
    assert out[0] == "error" and message in out[1]


def test_last_member_wins_and_edge_values() -> None:
    body = (
        b'{"items": [{"name": "old", "size": "1"}], "items": [{"name": "x", "name": "y", "size": "1", '
        b'"size": "00000000000000000000002", "\\u006eame": "z", "generation": null, "md5Hash": null}],'
        b' "nextPageToken": ""}'
    )
    rows, token, truncated, *_ = _same(body)
    assert rows == [("z", "", "", "", 2)] and (token, truncated) == ("", False)


def test_add_page_writes_md5_entries_from_either_parser() -> None:
    body = json.dumps(
        {"items": [{"name": f"p/{i}", "size": str(i), "md5Hash": MD5, "generation": str(100 + i)} for i in range(3)]}
    ).encode()
    for mod in IMPLS:
        buf = io.BytesIO()
        w = ManifestWriter(buf, "md5")
        w.add_page(mod.parse_gcs_page(body), 2, "n/", "gs://b/", algorithm="md5")
        w.close()
        buf.seek(0)
        got = [(e.path, e.algorithm, e.digest, e.size, e.ref, e.version_id) for e in ManifestReader(buf)]
        assert got == [(f"n/{i}", "md5", MD5, i, f"gs://b/p/{i}", str(100 + i)) for i in range(3)]
    with pytest.raises(depot.native.ManifestError, match="unknown entry digest algorithm"):
        ManifestWriter(io.BytesIO(), "md5").add_page(IMPLS[0].parse_gcs_page(body), 0, "", "", algorithm="sha1")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8,
)
_item = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=0, max_size=6) | _json,
        "size": st.sampled_from(["0", "12", "007", "-1", "x", ""]) | st.integers(-2, 2**64) | _json,
        "md5Hash": st.sampled_from([MD5, "", "abc"]) | _json,
        "generation": st.sampled_from(["1", "12345678901234567890123", "a"]) | st.integers(0, 9) | _json,
        "crc32c": st.text(max_size=4) | _json,
        "other": _json,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(_item, max_size=4) | _json,
    token=st.none() | st.text(max_size=5) | _json,
    ascii_only=st.booleans(),
)
def test_implementations_agree(items: Any, token: Any, ascii_only: bool) -> None:
    doc: dict[str, Any] = {"items": items}
    if token is not None:
        doc["nextPageToken"] = token
    _same(json.dumps(doc, ensure_ascii=ascii_only).encode())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40) | st.text(alphabet='{}[]":,\\u0123456789abeflnrstuxy .-+E', max_size=40).map(str.encode))
def test_implementations_agree_on_garbage(body: bytes) -> None:
    _same(body)
