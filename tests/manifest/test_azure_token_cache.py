"""Azure listings of one process share one Entra ID token until it nears expiry.

Each listing used to run DefaultAzureCredential's whole chain and request a
token. Entra ID cannot run here and azure-identity is an optional extra, so
``azure.identity.aio`` is a stand-in module counting its token requests
(the only fake in this file).
"""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest

from depot.services.manifest import azure_http


class _Credential:
    issued: list[float] = []
    lifetime_s = 3600.0

    async def __aenter__(self) -> _Credential:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def get_token(self, scope: str) -> Any:
        assert scope == "https://storage.azure.com/.default"
        _Credential.issued.append(time.time())
        return types.SimpleNamespace(
            token=f"t{len(_Credential.issued)}", expires_on=int(time.time() + _Credential.lifetime_s)
        )


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> type[_Credential]:
    module = types.ModuleType("azure.identity.aio")
    module.DefaultAzureCredential = _Credential  # type: ignore[attr-defined]
    for name in ("azure", "azure.identity"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "azure.identity.aio", module)
    monkeypatch.setattr(azure_http, "_token_cache", ("", 0.0))
    _Credential.issued = []
    _Credential.lifetime_s = 3600.0
    return _Credential


async def test_one_token_serves_many_listings(identity: type[_Credential]) -> None:
    assert [await azure_http._bearer_token() for _ in range(3)] == ["t1", "t1", "t1"]
    assert len(identity.issued) == 1


async def test_a_token_near_expiry_is_replaced(identity: type[_Credential]) -> None:
    identity.lifetime_s = azure_http._TOKEN_MARGIN_S - 1  # already inside the margin
    assert await azure_http._bearer_token() == "t1"
    assert await azure_http._bearer_token() == "t2"
