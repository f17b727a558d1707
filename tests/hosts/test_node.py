"""What terraform/templates/bootstrap.sh.tftpl promises on a provisioned server and client."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.hosts

TLS = ("/etc/firedrill/tls/ca.pem", "/etc/firedrill/tls/agent.pem", "/etc/firedrill/tls/agent-key.pem")


@pytest.mark.parametrize("binary", ["nomad", "consul"])
def test_agents_installed_everywhere(node: Any, binary: str) -> None:
    exe = node.file(f"/usr/local/bin/{binary}")
    assert exe.exists
    assert exe.mode & 0o111, f"{binary} is not executable"
    assert node.run(f"/usr/local/bin/{binary} version").rc == 0


@pytest.mark.parametrize("unit", ["consul", "nomad"])
def test_agents_running_everywhere(node: Any, unit: str) -> None:
    service = node.service(unit)
    assert service.is_running
    assert service.is_enabled


def test_tls_material_in_place(node: Any) -> None:
    for path in TLS:
        assert node.file(path).exists, path
    key = node.file(TLS[2])
    assert key.mode & 0o007 == 0, "the agent key must not be world-readable"
    assert "BEGIN CERTIFICATE" in node.file(TLS[0]).content_string
    assert node.file("/usr/local/share/ca-certificates/firedrill-ca.crt").exists


def test_acls_and_encryption_configured(node: Any) -> None:
    consul = node.file("/etc/consul.d/consul.hcl").content_string
    assert 'default_policy           = "deny"' in consul
    assert "encrypt" in consul
    assert "verify_server_hostname = true" in consul
    nomad = node.file("/etc/nomad.d/nomad.hcl").content_string
    assert "acl {\n  enabled = true" in nomad
    assert "http                   = true" in nomad


def test_server_binaries_and_services(server: Any) -> None:
    assert server.file("/usr/local/bin/vault").exists
    assert server.service("vault").is_running
    for port in (4646, 4647, 4648, 8300, 8301, 8501, 8200, 8201):
        assert server.socket(f"tcp://0.0.0.0:{port}").is_listening or any(
            s.endswith(f":{port}") for s in server.socket.get_listening_sockets()
        ), f"nothing listens on {port}"
    vault = server.file("/etc/vault.d/vault.hcl").content_string
    assert 'seal "awskms"' in vault
    assert "tls_cert_file" in vault


def test_client_runs_docker_and_listens(client: Any) -> None:
    assert client.service("docker").is_running
    assert not client.file("/usr/local/bin/vault").exists
    listening = client.socket.get_listening_sockets()
    for port in (4646, 8500, 8501):
        assert any(s.endswith(f":{port}") for s in listening), f"nothing listens on {port}"
