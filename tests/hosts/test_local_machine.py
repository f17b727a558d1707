"""The parts of a node spec that make sense on this machine: the local platform's binaries.

Runs in CI without --hosts (testinfra's local backend), whatever --hosts says.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import testinfra

pytestmark = pytest.mark.hosts

LOCAL = testinfra.get_host("local://")


@pytest.fixture(scope="module")
def local() -> Any:
    return LOCAL


@pytest.mark.parametrize(
    ("binary", "version_arg", "expect"),
    [
        ("prometheus", "--version", "prometheus, version"),
        ("promtool", "--version", "promtool, version"),
        ("amtool", "--version", "amtool, version"),
    ],
)
def test_local_monitoring_binaries(local: Any, binary: str, version_arg: str, expect: str) -> None:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed here (make setup installs the Debian package)")
    exe = local.file(path)
    assert exe.exists
    assert exe.mode & 0o111
    result = local.run(f"{path} {version_arg}")
    assert result.rc == 0
    assert expect in (result.stdout + result.stderr)


def test_promtool_accepts_a_rule_file(local: Any, tmp_path: Any) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed here")
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: spec\n    rules:\n      - record: spec:up:sum\n        expr: sum(up)\n")
    result = local.run(f"promtool check rules {rules}")
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
