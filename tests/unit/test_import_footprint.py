"""The platform's helper programs load only what they use (issue 16: memory footprint).

Each check imports a program's module in a fresh interpreter and lists which heavy packages got
loaded: the restarter and the OpenBao wrapper run no aiohttp server and parse no certificates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scripts.processes import spawn
from services.common.waiting import wait_until

REPORT_LOADED = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
)


def loaded_packages(module: str, tmp_path: Path) -> set[str]:
    log = tmp_path / f"{module}.log"
    child = spawn(module, [sys.executable, "-c", REPORT_LOADED, module], log)
    try:
        wait_until(lambda: not child.running, timeout_s=60, what=f"importing {module}")
    finally:
        child.stop()
    assert child.process.returncode == 0, log.read_text()
    return set(json.loads(log.read_text().splitlines()[-1]))


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("scripts.local.restarter", {"aiohttp", "cryptography", "grpc"}),
        # The wrapper lives as long as OpenBao: not even ssl, asyncio or secrets (≈ 10 MB together).
        (
            "scripts.vault.devserver",
            {"aiohttp", "cryptography", "prometheus_client", "hvac", "ssl", "asyncio", "secrets"},
        ),
        ("scripts.vault.agent", {"aiohttp", "grpc"}),
        # HTTP services verify no tokens: their own certificate's facts are read without
        # cryptography (≈ 10 MB each), and they speak no gRPC.
        ("services.hello.__main__", {"cryptography", "grpc", "jwt"}),
        ("services.response.__main__", {"cryptography", "grpc", "jwt"}),
        ("services.incidents.__main__", {"cryptography", "grpc", "jwt"}),
    ],
)
def test_helper_programs_do_not_load_heavy_packages_they_do_not_use(
    module: str, absent: set[str], tmp_path: Path
) -> None:
    assert loaded_packages(module, tmp_path) & absent == set()


def test_the_check_sees_a_heavy_package_when_it_is_loaded(tmp_path: Path) -> None:
    assert "aiohttp" in loaded_packages("services.hello.app", tmp_path)
