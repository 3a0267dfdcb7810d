import importlib.machinery
import os

import pytest

import depot.native as native


@pytest.mark.skipif(bool(os.environ.get("DEPOT_NO_EXTENSIONS")), reason="twins forced")
def test_compiled_modules_loaded() -> None:
    assert native.USING_EXTENSIONS
    assert native.HASHING_COMPILED and native.MANIFEST_COMPILED and native.S3PAGE_COMPILED
    for mod in (native.hash_file, native.parse_list_page, native.ManifestWriter):
        assert mod.__module__ in {"depot.native._hashing", "depot.native._s3page", "depot.native._manifest"}
    from depot.native import _hashing, _manifest, _s3page

    for m in (_hashing, _manifest, _s3page):
        assert m.__file__ is not None
        assert m.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_public_names() -> None:
    for name in native.__all__:
        assert hasattr(native, name), name
    # Errors and records are shared classes whichever implementation is picked.
    from depot.native import _manifest_py, _s3page_py

    assert native.ManifestError is _manifest_py.ManifestError
    assert native.S3PageError is _s3page_py.S3PageError
    assert issubclass(native.S3PageError, ValueError)
