"""The CLI's shape without a server: help on every argument, --version, JSON conversion,
Ctrl-C, and `depot server` in an install without the server extra."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import version

import pytest

from depot.cli._main import main, parser
from depot.cli._output import message_json
from depot.cli._server import NEEDS_EXTRA
from depot.metadata.v1 import metadata_pb2 as pb


def _commands(
    ap: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, ap
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_argument_has_help() -> None:
    missing = []
    for path, ap in _commands(parser()):
        for action in ap._actions:
            if not action.help:
                missing.append(f"depot {' '.join(path)} {action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"depot {' '.join(path)} {a.dest}" for a in action._choices_actions if not a.help]
    assert missing == []


def test_every_command_dispatches_to_a_function() -> None:
    leaves = [
        (path, ap)
        for path, ap in _commands(parser())
        if not any(isinstance(a, argparse._SubParsersAction) for a in ap._actions)
    ]
    assert len(leaves) > 25
    assert [path for path, ap in leaves if not callable(ap.get_default("func"))] == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"depot {version('depot')}"


def test_json_is_snake_case_with_integers_as_numbers() -> None:
    v = pb.ArtifactVersion(
        name="entities/e/projects/p/artifacts/a/versions/v7",
        index=7,
        size=2**40,
        file_count=3,
        aliases=["latest"],
        ttl_mode=pb.TTL_MODE_DURATION,
        linked=True,
    )
    v.ttl.FromTimedelta(timedelta(days=30))
    v.commit_time.FromJsonString("2026-11-30T04:00:00Z")
    out = message_json(v)
    assert out["index"] == 7 and out["size"] == 2**40 and out["file_count"] == 3
    assert out["ttl"] == 30 * 86400 and out["ttl_mode"] == "TTL_MODE_DURATION"
    assert out["commit_time"] == "2026-11-30T04:00:00Z"
    assert out["aliases"] == ["latest"] and out["linked"] is True
    # Unset messages are null, unset scalars their zero value: every key is always there.
    assert out["expire_time"] is None and out["link"] is None and out["tags"] == [] and out["digest"] == ""
    assert set(out) == {f.name for f in pb.ArtifactVersion.DESCRIPTOR.fields}
    # Round trips through JSON as it is.
    assert json.loads(json.dumps(out)) == out


def test_json_of_oneof_and_nested_messages() -> None:
    node = pb.LineageNode(name="entities/e/projects/p/runs/r", depth=2, run=pb.Run(name="entities/e/projects/p/runs/r"))
    out = message_json(node)
    assert out["depth"] == 2 and out["version"] is None
    assert isinstance(out["run"], dict) and out["run"]["name"] == "entities/e/projects/p/runs/r"


def _depot(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "depot", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    # A server that accepts the connection and never answers: the command is
    # inside its call when the accept returns, so SIGINT lands mid-request.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        port = listener.getsockname()[1]
        proc = _depot(
            "artifact", "ls", "team/p/ds", env={"DEPOT_ADDRESS": f"127.0.0.1:{port}", "DEPOT_API_KEY": "dpt_x_y"}
        )
        try:
            conn, _ = listener.accept()
            with conn:
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""


# Imports of the server extra's packages fail, as in `pip install depot` without [server].
_WITHOUT_SERVER_EXTRA = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("asyncpg", "aiobotocore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from depot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_server_without_the_server_extra_names_it_in_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SERVER_EXTRA, "server"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr.strip() == NEEDS_EXTRA == "depot server needs the server extra: pip install 'depot[server]'"
    # The SDK commands still work in such an install: they reach the network (and fail there).
    r = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SERVER_EXTRA, "key", "ls"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEPOT_ADDRESS": "127.0.0.1:1", "DEPOT_API_KEY": "dpt_x_y", "DEPOT_RETRY_WINDOW": "0"},
    )
    assert r.returncode == 1 and r.stderr.startswith("depot: error: CommError"), r.stderr
