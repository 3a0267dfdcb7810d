"""A bad connection setting in the environment, as the CLI shows it: one line (or
one JSON error) naming the variable, exit status 1, before anything is sent."""

from __future__ import annotations

import json

import pytest

from depot.cli._main import main


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEPOT_ADDRESS", "10.1.2.3:50051"),  # plaintext to another host
        ("DEPOT_ADDRESS", "http://127.0.0.1:50051"),
        ("DEPOT_CALL_TIMEOUT", "soon"),
        ("DEPOT_STREAM_TIMEOUT", "0"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv("DEPOT_API_KEY", "dpt_x_y")
    monkeypatch.setenv(variable, value)
    assert main(["--json", "key", "ls"]) == 1
    out, err = capsys.readouterr()
    error = json.loads(err)["error"]
    assert (out, error["code"], error["field"]) == ("", "InvalidArgumentError", variable)
    assert error["message"].startswith(variable)
    assert main(["key", "ls"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"depot: error: InvalidArgumentError: {variable}") and err.count("\n") == 1
