from __future__ import annotations

from pathlib import Path

import pytest

from services.common import catalog
from services.common.config import ConfigError, Env, ServiceConfig
from services.common.profiles import DRILL, PRODUCTION, duration, profile


def test_defaults_come_from_the_catalog(tmp_path: Path) -> None:
    config = ServiceConfig.from_env("metadata", {"FIREDRILL_STATE_DIR": str(tmp_path)})
    assert config.port == catalog.service("metadata").port
    assert config.metrics_port == catalog.service("metadata").metrics_port
    assert config.registry_dir == tmp_path / "registry"
    assert config.timing is DRILL
    assert config.tls is None


def test_port_offset_shifts_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREDRILL_PORT_OFFSET", "10000")
    config = ServiceConfig.from_env("hello", {})
    assert config.port == 15050


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("FIREDRILL_PORT", "http", "expected an integer"),
        ("FIREDRILL_PORT", "70000", "between 1 and 65535"),
        ("FIREDRILL_PROFILE", "fast", "drill, production"),
        ("FIREDRILL_DISCOVERY", "zookeeper", "local, consul"),
        ("FIREDRILL_INSTRUMENTATION", "maybe", "true/false"),
        ("FIREDRILL_SHUTDOWN_GRACE_S", "-1", "between 0.0 and 300.0"),
        ("FIREDRILL_TLS_CERT_FILE", "/tmp/cert.pem", "together"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServiceConfig.from_env("hello", {variable: value})
    assert caught.value.variable == variable
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(variable)


def test_secret_files_are_read_and_never_taken_from_values(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    env = Env({"FIREDRILL_ADMIN_TOKEN_FILE": str(secret)})
    assert env.secret_file("FIREDRILL_ADMIN_TOKEN_FILE") == "s3cr3t"
    with pytest.raises(ConfigError, match="cannot read"):
        Env({"X_FILE": str(tmp_path / "missing")}).secret_file("X_FILE")
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        Env({"X_FILE": str(tmp_path / "empty")}).secret_file("X_FILE")


def test_profiles_order_and_durations() -> None:
    assert profile("production") is PRODUCTION
    assert DRILL.for_service_down_s < PRODUCTION.for_service_down_s
    assert DRILL.heartbeat_interval_s < DRILL.heartbeat_ttl_s
    assert duration(90) == "1m30s"
    assert duration(3600) == "1h"
    assert duration(0) == "0s"
    with pytest.raises(ValueError, match="whole"):
        duration(1.5)


def test_catalog_ports_are_unique_and_named() -> None:
    ports = [p for s in catalog.SERVICES for p in (s.port, s.metrics_port, s.http_port) if p is not None]
    ports += [i.port for i in catalog.INFRA]
    assert len(ports) == len(set(ports))
    for spec in catalog.SERVICES:
        for dependency in spec.depends_on:
            assert dependency in catalog.service_names()
    with pytest.raises(KeyError, match="unknown service"):
        catalog.service("nope")
