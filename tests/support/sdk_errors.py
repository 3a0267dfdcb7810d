"""How the SDK tests check that an error reaching a user is the SDK's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import depot
from depot.services.common import errors as service_errors


def refused(fn: Callable[[], Any], cls: type[depot.DepotError] = depot.InvalidArgumentError) -> depot.DepotError:
    """The error ``fn`` raises: of the SDK's class ``cls``, never a service exception type."""
    with pytest.raises(Exception) as info:
        fn()
    err = info.value
    assert isinstance(err, cls), f"{type(err).__module__}.{type(err).__name__}: {err}"
    assert not isinstance(err, service_errors.DepotError), "a service exception type leaked out of the SDK"
    return err
