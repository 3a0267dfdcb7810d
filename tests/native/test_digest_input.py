"""The artifact digest's input is unambiguous: the digest functions themselves
refuse control characters, in both implementations, so no caller can forget.

Regression: a one-file manifest with the path "aa:<digest of A>\\nb" hashed
to the same artifact digest as the two files "aa" and "b".
"""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.native_impls import IMPLS, Impl

from depot.native._manifest_py import ManifestError

A = "0123456789abcdef0123456789abcdef"
CONTROL = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]]


def test_newline_path_cannot_forge_two_files(impl: Impl) -> None:
    forged = f"aa:{A}\nb"
    with pytest.raises(ManifestError, match="control character"):
        impl.manifest.artifact_digest("md5", [(forged, A)])
    with pytest.raises(ManifestError, match="control character"):
        impl.manifest.ManifestWriter(io.BytesIO(), "md5").add(forged, "md5", A, 1)
    # The two honest files still digest as before.
    assert impl.manifest.artifact_digest("md5", [("aa", A), ("b", A)]) == IMPLS[0].manifest.artifact_digest(
        "md5", [("aa", A), ("b", A)]
    )


@pytest.mark.parametrize("ch", CONTROL, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_refused(impl: Impl, ch: str) -> None:
    d = impl.manifest.ArtifactDigester("xxh3_128")
    with pytest.raises(ManifestError, match="manifest path"):
        d.update(f"a{ch}b", A)
    with pytest.raises(ManifestError, match="entry digest"):
        d.update("ab", f"{A}{ch}")


def test_rejected_entry_leaves_writer_intact(impl: Impl) -> None:
    out = io.BytesIO()
    w = impl.manifest.ManifestWriter(out, "md5")
    w.add("a", "md5", A, 1)
    with pytest.raises(ManifestError):
        w.add("b\r", "md5", A, 1)
    w.add("c", "md5", A, 2)
    s = w.close()
    assert s.count == 2 and s.total_size == 3
    assert s.digest == impl.manifest.artifact_digest("md5", [("a", A), ("c", A)])
    assert [e.path for e in impl.manifest.ManifestReader(io.BytesIO(out.getvalue()))] == ["a", "c"]


def _outcome(impl: Impl, path: str, digest: str) -> str:
    try:
        return impl.manifest.artifact_digest("md5", [(path, digest)])
    except ManifestError as e:
        return f"error: {e}"


_text = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(CONTROL),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(_text, _text)
def test_implementations_agree_on_refusals(path: str, digest: str) -> None:
    outcomes = {_outcome(i, path, digest) for i in IMPLS}
    assert len(outcomes) == 1, outcomes
    refused = any(c in CONTROL for c in path + digest)
    assert next(iter(outcomes)).startswith("error:") == refused
