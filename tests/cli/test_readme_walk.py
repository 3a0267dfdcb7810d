"""The README's CLI example, typed in order by a new user on a fresh server.

The commands are read from the README's ```sh block under "The CLI", so the
example and this test cannot drift apart. `depot server` is the fixture's
server (started the same way, on a fresh database); `export` lines set the
environment, with `~/.depot` standing for that server's data dir.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from depot.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    start = text.index("The CLI (`depot --help`")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block, "the README's CLI block is gone"
    commands = []
    for line in block.group(1).splitlines():
        line = line.split("  #", 1)[0].strip()
        commands += [c.strip() for c in line.split(" ; ") if c.strip()]
    return commands


def test_the_block_is_found_and_starts_with_the_server() -> None:
    commands = readme_commands()
    assert commands[0] == "depot server" and len(commands) > 10


def test_walk_the_readme(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEPOT_ADDRESS", server.address)
    monkeypatch.delenv("DEPOT_API_KEY", raising=False)
    # What a user has at hand: a data directory and a model file.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data" / "labels.txt").write_text("cat\ndog\n")
    (tmp_path / "model.pt").write_bytes(b"\x80weights")
    data_dir = str(server.config.data_dir)
    for command in readme_commands():
        if command == "depot server":
            continue  # the fixture's server
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, value.replace("~/.depot", data_dir))
            continue
        argv = shlex.split(command)
        assert argv[0] == "depot", command
        rc = main(argv[1:])
        out, err = capsys.readouterr()
        assert rc == 0, f"{command!r} failed: {err.strip()}"
    # The walk did what it says.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labels.txt", "train.csv"]
    assert (tmp_path / "manifest.json").is_file()
    assert os.environ["DEPOT_API_KEY_FILE"].startswith(data_dir)
