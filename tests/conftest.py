"""Shared by every test directory: the repository root, binaries, and the one real local platform.

``local_platform`` runs from its own state directory with every port shifted by an offset
reserved at run time (scripts.ports.reserved_port_offset), so it can run beside a developer's own
`make up` and beside another test run. It is started once per session, on first use, shared by
tests/integration and tests/hostile, and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.deploy_target.interface import Endpoints
from scripts.local.stack import LocalPlatform
from scripts.ports import reserved_port_offset
from scripts.promql import Prometheus
from scripts.vault.local import rendered_identity
from services.common import catalog
from services.common.profiles import DRILL
from services.common.tls import TlsMaterial

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def require_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine (run `make setup`)")
    return found


@dataclass
class RunningPlatform:
    platform: LocalPlatform
    endpoints: Endpoints
    state_dir: Path

    @property
    def prometheus_url(self) -> str:
        return self.endpoints.prometheus

    @property
    def prometheus(self) -> Prometheus:
        return Prometheus(self.endpoints.prometheus)

    def url(self, service: str, path: str = "") -> str:
        return self.endpoints.services[service] + path

    def metrics_url(self, service: str) -> str:
        """The plain ops port of a service (/metrics and /health, no client certificate)."""
        return f"http://127.0.0.1:{catalog.port(catalog.service(service).scrape_port)}/metrics"

    def operator_ssl(self) -> ssl.SSLContext | bool:
        """The operator's client certificate for services that require mTLS."""
        return self.endpoints.client_ssl() or True

    def identity_ssl(self, identity: str) -> ssl.SSLContext:
        """A client context presenting ``identity``'s certificate as this platform rendered it."""
        files = rendered_identity(self.state_dir, identity)
        assert files is not None, f"the platform rendered no certificate for {identity}"
        return TlsMaterial(files, identity).client_context()


@pytest.fixture(scope="session")
def local_platform() -> Iterator[RunningPlatform]:
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (run `make setup`); the local platform cannot start")
    previous = os.environ.get("FIREDRILL_PORT_OFFSET")
    with reserved_port_offset(catalog.base_ports()) as offset:
        os.environ["FIREDRILL_PORT_OFFSET"] = str(offset)
        state_dir = Path(tempfile.mkdtemp(prefix="fd-it-"))
        platform = LocalPlatform(state_dir, DRILL)
        try:
            endpoints = platform.up(progress=lambda line: print(line, flush=True), wait_timeout_s=120)
            yield RunningPlatform(platform, endpoints, state_dir)
        finally:
            platform.down()
            if previous is None:
                os.environ.pop("FIREDRILL_PORT_OFFSET", None)
            else:
                os.environ["FIREDRILL_PORT_OFFSET"] = previous
            shutil.rmtree(state_dir, ignore_errors=True)
