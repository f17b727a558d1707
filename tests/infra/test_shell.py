"""shellcheck on every shell script of the repository, and the cluster scripts' behaviour without tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.cluster.jobspec import REPO

pytestmark = pytest.mark.infra

SKIP_DIRS = {".git", ".firedrill", "node_modules"}


def shell_scripts() -> list[Path]:
    found = []
    for path in REPO.rglob("*.sh"):
        parts = path.relative_to(REPO).parts
        if any(p in SKIP_DIRS or p.startswith((".venv", ".firedrill")) for p in parts):
            continue
        found.append(path)
    ci = REPO / ".ci" / "run"
    if ci.is_file():
        found.append(ci)
    return sorted(found)


def test_there_are_scripts_to_check() -> None:
    names = {p.name for p in shell_scripts()}
    assert {"dev-cluster.sh", "build-image.sh", "install-checkov.sh"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_clean(script: Path) -> None:
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (make setup installs it)")
    result = subprocess.run([binary, "--external-sources", str(script)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def _without(binaries: set[str], tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the usual tools but none of ``binaries``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            target = bin_dir / entry.name
            if entry.name in binaries or target.exists():
                continue
            try:
                target.symlink_to(entry)
            except OSError:
                continue
    return {**os.environ, "PATH": str(bin_dir)}


def test_dev_cluster_says_what_is_missing_and_exits_2(tmp_path: Path) -> None:
    env = _without({"nomad", "consul", "vault"}, tmp_path)
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster" / "dev-cluster.sh")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "not on PATH: nomad consul vault" in result.stderr


def test_build_image_without_an_engine_exits_2(tmp_path: Path) -> None:
    env = _without({"docker"}, tmp_path)
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster" / "build-image.sh")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "docker is not installed" in result.stderr


def test_build_image_refuses_latest(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster" / "build-image.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "VERSION": "latest"},
    )
    assert result.returncode == 2
    assert "refusing to build the tag 'latest'" in result.stderr


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2, "expected a build stage and a runtime stage"
    assert "slim" in text.split("ARG PYTHON_IMAGE=", 1)[1].splitlines()[0]
    assert ":latest" not in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users, "the image must set a non-root USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "*", ".dockerignore should exclude everything not listed"
