"""Error reasons are part of the contract (AIP-193 ErrorInfo.reason).

The ``ErrorReason`` enum (protos/depot/common/v1/common.proto) is the list;
the services raise only its values, never a free string; the SDK maps each
reason to exactly one exception class and knows no reason the enum lacks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

from depot import _exceptions as sdk
from depot.common.v1.common_pb2 import ErrorReason
from depot.services.common import errors, status

ROOT = Path(__file__).resolve().parents[2]
REASONS = {name for name in ErrorReason.keys() if name != "ERROR_REASON_UNSPECIFIED"}
# What the enum wrapper offers besides its values.
_ENUM_API = {"Name", "Value", "keys", "values", "items", "ValueType", "DESCRIPTOR"}


def test_every_reason_maps_to_one_sdk_class() -> None:
    unmapped = REASONS - sdk.BY_REASON.keys()
    assert not unmapped, f"reasons with no SDK exception class: {sorted(unmapped)}"


def test_the_sdk_maps_no_reason_the_enum_lacks() -> None:
    unknown = sdk.BY_REASON.keys() - REASONS
    assert not unknown, f"SDK reasons missing from ErrorReason: {sorted(unknown)}"
    assert all(issubclass(cls, sdk.DepotError) for cls in sdk.BY_REASON.values())


def _reason_uses(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """Every value given as a reason: ``reason=...`` arguments and ``reason = ...`` class attributes."""
    out: list[tuple[int, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out += [(kw.value.lineno, kw.value) for kw in node.keywords if kw.arg == "reason"]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(isinstance(t, ast.Name) and t.id == "reason" for t in targets):
                out.append((node.lineno, node.value))
    return out


def _service_files() -> list[Path]:
    return sorted((ROOT / "services").rglob("*.py"))


def test_services_raise_only_enum_reasons() -> None:
    bad = []
    for path in _service_files():
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        for line, value in _reason_uses(tree):
            if isinstance(value, ast.Constant):
                bad.append(f"{where}:{line}: free literal reason {value.value!r}; use ErrorReason.X")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorReason"
                and node.attr not in REASONS | _ENUM_API
            ):
                bad.append(f"{where}:{node.lineno}: ErrorReason.{node.attr} is not in the enum")
    assert not bad, "\n".join(bad)


def test_the_scan_catches_what_it_should() -> None:
    """The checks above are not vacuous: a literal and an unknown name are found."""
    tree = ast.parse('raise X("m", reason="OOPS")\nclass E:\n    reason = "NOPE"\n')
    assert [type(v).__name__ for _, v in _reason_uses(tree)] == ["Constant", "Constant"]
    assert _service_files(), "no service sources found"


@pytest.mark.parametrize(
    "cls", [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.DepotError)]
)
def test_each_service_error_reaches_the_sdk_as_its_class(cls: type[errors.DepotError]) -> None:
    """A service error's reason picks an SDK class that is a kind of its status code's class,
    so ``except NotFoundError`` catches what a NOT_FOUND status ever carried."""
    exc = cls.__new__(cls)  # some take more than a message; the class decides code and reason
    exc.message, exc.field = "m", None
    code, _message, reason, _field = status.to_status(exc)
    chosen = sdk.BY_REASON[reason]
    by_code = sdk._BY_CODE.get(code, sdk.DepotError)
    assert issubclass(chosen, by_code), (cls.__name__, chosen.__name__, by_code.__name__)
    assert code != grpc.StatusCode.OK
