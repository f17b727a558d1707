from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import pytest

from services.common import catalog
from services.common.config import ConfigError, Env, ServiceConfig, variables_read
from services.common.profiles import DRILL, PRODUCTION, duration, profile
from services.response.config import ResponseConfig


def test_defaults_come_from_the_catalog(tmp_path: Path) -> None:
    config = ServiceConfig.from_env("metadata", {"FIREDRILL_STATE_DIR": str(tmp_path)})
    assert config.port == catalog.service("metadata").port
    assert config.metrics_port == catalog.service("metadata").metrics_port
    assert config.registry_dir == tmp_path / "registry"
    assert config.timing is DRILL
    assert config.tls is None


def test_port_offset_shifts_every_default() -> None:
    config = ServiceConfig.from_env("hello", {"FIREDRILL_PORT_OFFSET": "10000"})
    assert config.port == 15050
    assert config.metrics_port == 19150


def test_the_mapping_given_wins_over_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shell's offset once leaked in: 100 in the shell and 5 in the mapping gave 5150.
    monkeypatch.setenv("FIREDRILL_PORT_OFFSET", "100")
    monkeypatch.setenv("FIREDRILL_PROFILE", "production")
    config = ServiceConfig.from_env("hello", {"FIREDRILL_PORT_OFFSET": "5"})
    assert config.port == 5055
    assert config.timing is DRILL
    assert ServiceConfig.from_env("hello", {}).port == 5050


def test_consul_ca_comes_from_the_mapping(tmp_path: Path) -> None:
    ca = tmp_path / "consul-ca.pem"
    assert ServiceConfig.from_env("hello", {"CONSUL_CACERT": str(ca)}).consul_ca_file == ca
    assert ServiceConfig.from_env("hello", {}).consul_ca_file is None


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("FIREDRILL_PORT", "http", "expected an integer"),
        ("FIREDRILL_PORT", "70000", "between 1 and 65535"),
        ("FIREDRILL_PORT_OFFSET", "many", "must be an integer"),
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


def test_secret_files_are_recorded_as_paths_not_read_while_loading(tmp_path: Path) -> None:
    # The file need not exist yet: the renderer may write it after the service starts.
    config = ResponseConfig.from_env({"FIREDRILL_ADMIN_TOKEN_FILE": str(tmp_path / "not-yet")})
    assert config.admin_token_file == tmp_path / "not-yet"


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


def test_variables_read_are_found_by_running_the_loader() -> None:
    def load(environ: Mapping[str, str]) -> None:
        env = Env(environ)
        env.text("B", "b")
        env.flag("A", False)
        env.text("B", "again")

    assert variables_read(load) == ("B", "A")


# What each service declared by hand before its ENV_VARS were derived from its loader.
_COMMON = (
    "FIREDRILL_BIND_HOST",
    "FIREDRILL_PORT",
    "FIREDRILL_METRICS_PORT",
    "FIREDRILL_ADVERTISE_HOST",
    "FIREDRILL_DISCOVERY",
    "FIREDRILL_SELF_REGISTER",
    "FIREDRILL_REGISTRY_DIR",
    "CONSUL_HTTP_ADDR",
    "FIREDRILL_PROFILE",
    "FIREDRILL_LOG_LEVEL",
    "FIREDRILL_INSTRUMENTATION",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "FIREDRILL_TRACE_RATIO",
    "FIREDRILL_TRACE_FILE",
    "FIREDRILL_SHUTDOWN_GRACE_S",
    "FIREDRILL_TLS_CERT_FILE",
    "FIREDRILL_TLS_KEY_FILE",
    "FIREDRILL_TLS_CA_FILE",
    "FIREDRILL_VERSION",
    "FIREDRILL_ADMIN_TOKEN_FILE",  # every service's own token: its ops port's debugging endpoints
)
_TOKENS = (
    "FIREDRILL_JWT_ISSUER",
    "FIREDRILL_JWT_AUDIENCE",
    "FIREDRILL_JWT_TTL_S",
    "FIREDRILL_JWT_LEEWAY_S",
    "FIREDRILL_JWT_PUBLIC_KEYS_FILE",
)
_DECLARED_BY_HAND = {
    "hello": (*_COMMON, "FIREDRILL_UPSTREAM_DEADLINE_MS", "FIREDRILL_UPSTREAM_ATTEMPTS"),
    "response": (
        *_COMMON,
        "FIREDRILL_LEAK_CAP_MB",
        "FIREDRILL_FAULT_LATENCY_MS",
        "FIREDRILL_FAULT_ERROR_RATIO",
    ),
    "incidents": (
        *_COMMON,
        "FIREDRILL_DATA_DIR",
        "FIREDRILL_PROMETHEUS_URL",
        "FIREDRILL_ENRICH_TIMEOUT_MS",
        "FIREDRILL_ENRICH_QUEUE",
        "FIREDRILL_WRITE_BATCH",
    ),
    "metadata": (
        *_COMMON,
        *_TOKENS,
        "FIREDRILL_DATA_DIR",
        "FIREDRILL_CACHE_TTL_S",
        "FIREDRILL_CACHE_MAX_ENTRIES",
        "FIREDRILL_FAULT_LATENCY_MS",
    ),
    "rating": (*_COMMON, *_TOKENS, "FIREDRILL_DATA_DIR", "FIREDRILL_FAULT_LATENCY_MS"),
    "movie": (
        *_COMMON,
        *_TOKENS,
        "FIREDRILL_HTTP_PORT",
        "FIREDRILL_DATA_DIR",
        "FIREDRILL_UPSTREAM_DEADLINE_MS",
        "FIREDRILL_UPSTREAM_ATTEMPTS",
        "FIREDRILL_UPSTREAM_ATTEMPT_TIMEOUT_MS",
        "FIREDRILL_RATING_BUDGET_MS",
        "FIREDRILL_RATE_LIMIT_RPS",
        "FIREDRILL_RATE_LIMIT_BURST",
        "FIREDRILL_RATE_LIMIT_CALLER_RPS",
        "FIREDRILL_RATE_LIMIT_CALLER_BURST",
        "FIREDRILL_RATE_LIMIT_ANONYMOUS_RPS",
        "FIREDRILL_RATE_LIMIT_ANONYMOUS_BURST",
        "FIREDRILL_RATE_LIMIT_MAX_KEYS",
        "FIREDRILL_UPLOAD_MAX_BYTES",
        "FIREDRILL_TOKEN_CACHE_TTL_S",
    ),
    "auth": (
        *_COMMON,
        *_TOKENS,
        "FIREDRILL_DATA_DIR",
        "FIREDRILL_JWT_KEY_FILE",
        "FIREDRILL_DEMO_USER",
        "FIREDRILL_DEMO_PASSWORD_FILE",
        "FIREDRILL_LOGIN_FAILURES_PER_MIN",
    ),
}
# Read all along but never declared: the state directory and port offset (defaults of paths and
# ports) and the Consul CA (read from the process environment by the Consul client before).
_READ_BUT_UNDECLARED = {"FIREDRILL_STATE_DIR", "FIREDRILL_PORT_OFFSET", "CONSUL_CACERT"}


@pytest.mark.parametrize("name", catalog.service_names())
def test_derived_env_vars_are_the_declared_ones_plus_the_undeclared_reads(name: str) -> None:
    derived = importlib.import_module(f"services.{name}.config").ENV_VARS
    assert len(derived) == len(set(derived))
    assert set(derived) == set(_DECLARED_BY_HAND[name]) | _READ_BUT_UNDECLARED
