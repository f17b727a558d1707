"""Host specs run with pytest-testinfra.

    pytest tests/hosts --hosts=ssh://ubuntu@<server EIP> --ssh-identity-file=~/.ssh/key.pem
    pytest tests/hosts --hosts=ssh://ubuntu@<client IP>

Without --hosts the node specs skip (they describe a provisioned cluster node, not this machine);
test_local_machine.py always runs against this machine.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def node(request: pytest.FixtureRequest, host: Any) -> Any:
    """The provisioned node under test (testinfra's ``host``), or a skip when none was given."""
    if not request.config.getoption("hosts", default=None):
        pytest.skip("no node given: run `pytest tests/hosts --hosts=ssh://ubuntu@<ip>` against a provisioned node")
    return host


@pytest.fixture
def role(node: Any) -> str:
    """server when the node runs Vault (servers do, clients do not)."""
    return "server" if node.file("/etc/vault.d/vault.hcl").exists else "client"


@pytest.fixture
def server(node: Any, role: str) -> Any:
    if role != "server":
        pytest.skip("server spec: this node is a client")
    return node


@pytest.fixture
def client(node: Any, role: str) -> Any:
    if role != "client":
        pytest.skip("client spec: this node is a server")
    return node
