"""Fixtures giving each native test both implementations (see native_impls)."""

from __future__ import annotations

import pytest
from support.native_impls import IMPLS, NO_EXT, Impl


@pytest.fixture(params=IMPLS, ids=lambda i: i.name)
def impl(request: pytest.FixtureRequest) -> Impl:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def py_impl() -> Impl:
    return IMPLS[0]


@pytest.fixture
def c_impl() -> Impl:
    if NO_EXT:
        pytest.skip("DEPOT_NO_EXTENSIONS is set")
    return IMPLS[1]
