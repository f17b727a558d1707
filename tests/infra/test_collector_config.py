"""The tracing job's collector configuration uses only components and keys the pinned collector knows.

The collector rejects a configuration with an unknown key at start-up, so a typo or a key from
another version leaves the cluster without traces. The schema below is our record of the pinned
image's configuration structs (``mapstructure`` tags); bumping the image fails
``test_the_schema_matches_the_pinned_image`` until the schema is checked again.

Sources read (public repositories). The stored versions carry no release tag, so the 0.104.0
structs themselves were not read: each key used appears in every version read, the oldest of them
from long before the pin.

- contrib ``processor/tailsamplingprocessor/config.go`` at 03122acfdec2 (v0.1x) and 497862f69939
  (with ``ottl_condition``, before ``drop``): decision_wait, num_traces, expected_new_traces_per_sec,
  policies[name, type, status_code.status_codes, latency.threshold_ms, probabilistic.sampling_percentage].
- core ``internal/memorylimiter/config.go`` at 30f3e183371f: check_interval, limit_percentage,
  spike_limit_percentage, and ``Validate`` (spike below limit, both at most 100, interval above 0).
- core ``processor/batchprocessor/config.go``: timeout, send_batch_size, send_batch_max_size.
- core ``service/telemetry/config.go`` at 05fe5fafb686: metrics.level, metrics.address
  (deprecated for ``readers`` by open-telemetry/opentelemetry-collector#11205, merged 2024-09,
  after 0.104.0).
- The Jaeger exporter left contrib in v0.85.0; Jaeger >= 1.35 takes OTLP, so the job exports with
  the ``otlp`` exporter to Jaeger's OTLP port.
"""

from __future__ import annotations

from typing import Any

import pytest

from scripts.cluster.jobspec import job_files, read_job
from tests.infra.test_consul_templates import STATES, Renderer, find_template, load_yaml, renderer

pytestmark = pytest.mark.infra

__all__ = ["renderer"]  # the session fixture, shared with the Consul-template tests

PINNED_IMAGE = "otel/opentelemetry-collector-contrib:0.104.0"

# A schema is a dict of known keys (value: the schema below it, or ANY for a leaf), or a one-element
# list for a list of items.
ANY: dict[str, Any] = {}
LEAF = None

TLS_CLIENT = {k: LEAF for k in ("insecure", "insecure_skip_verify", "ca_file", "cert_file", "key_file")}
GRPC_SERVER = {k: LEAF for k in ("endpoint", "transport", "max_recv_msg_size_mib", "max_concurrent_streams")}
POLICY = {
    "name": LEAF,
    "type": LEAF,
    "status_code": {"status_codes": LEAF},
    "latency": {"threshold_ms": LEAF},
    "probabilistic": {"sampling_percentage": LEAF, "hash_salt": LEAF},
}
COMPONENTS: dict[str, dict[str, Any]] = {
    "receivers": {"otlp": {"protocols": {"grpc": GRPC_SERVER, "http": {"endpoint": LEAF}}}},
    "processors": {
        "memory_limiter": {
            k: LEAF
            for k in ("check_interval", "limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage")
        },
        "batch": {k: LEAF for k in ("timeout", "send_batch_size", "send_batch_max_size")},
        "tail_sampling": {
            "decision_wait": LEAF,
            "num_traces": LEAF,
            "expected_new_traces_per_sec": LEAF,
            "policies": [POLICY],
        },
    },
    "exporters": {
        "otlp": {"endpoint": LEAF, "tls": TLS_CLIENT, "compression": LEAF, "timeout": LEAF, "headers": LEAF},
        "debug": {k: LEAF for k in ("verbosity", "sampling_initial", "sampling_thereafter")},
    },
    "extensions": {"health_check": {"endpoint": LEAF, "path": LEAF}},
}
SERVICE = {
    "extensions": LEAF,
    "pipelines": LEAF,
    "telemetry": {"logs": {"level": LEAF, "encoding": LEAF}, "metrics": {"level": LEAF, "address": LEAF}},
}
POLICY_TYPES = {"always_sample", "latency", "numeric_attribute", "probabilistic", "status_code", "string_attribute"}
STATUS_CODES = {"OK", "ERROR", "UNSET"}


def unknown_keys(value: Any, schema: Any, where: str) -> list[str]:
    if schema is LEAF:
        return []
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [problem for i, item in enumerate(value) for problem in unknown_keys(item, schema[0], f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: expected a mapping"]
    problems = [f"{where}.{key}: not a key of the pinned collector" for key in value if key not in schema]
    return problems + [
        p for key, sub in value.items() if key in schema for p in unknown_keys(sub, schema[key], f"{where}.{key}")
    ]


def config_problems(config: dict[str, Any]) -> list[str]:
    """Unknown component types and keys, and the values the pinned collector's validation refuses."""
    problems = [f"{key}: not a top-level section" for key in config if key not in {*COMPONENTS, "service"}]
    for section, known in COMPONENTS.items():
        for name, body in (config.get(section) or {}).items():
            kind = name.split("/", 1)[0]
            if kind not in known:
                problems.append(f"{section}.{name}: no {kind!r} component in the pinned collector")
                continue
            problems += unknown_keys(body or {}, known[kind], f"{section}.{name}")
    problems += unknown_keys(config.get("service") or {}, SERVICE, "service")
    limiter = (config.get("processors") or {}).get("memory_limiter")
    if limiter is not None:
        limit, spike = limiter.get("limit_percentage", 0), limiter.get("spike_limit_percentage", 0)
        if not (0 <= spike < limit <= 100) or not limiter.get("check_interval"):
            problems.append("processors.memory_limiter: needs check_interval and 0 <= spike < limit <= 100")
    for i, policy in enumerate(((config.get("processors") or {}).get("tail_sampling") or {}).get("policies") or []):
        if policy.get("type") not in POLICY_TYPES or policy["type"] not in policy:
            problems.append(f"tail_sampling.policies[{i}]: type {policy.get('type')!r} without its settings")
        codes = set((policy.get("status_code") or {}).get("status_codes") or [])
        if not codes <= STATUS_CODES:
            problems.append(f"tail_sampling.policies[{i}]: unknown status codes {sorted(codes - STATUS_CODES)}")
    return problems


def test_the_schema_matches_the_pinned_image() -> None:
    job = read_job(job_files()["tracing"])
    assert job.variables["collector_image"]["default"] == PINNED_IMAGE, "image bumped: check the schema against it"


@pytest.mark.parametrize("state", STATES)
def test_collector_config_is_known_to_the_pinned_collector(renderer: Renderer, state: str) -> None:
    config = load_yaml(renderer.rendered(find_template("tracing", "local/collector.yaml"), state))
    assert config_problems(config) == []
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["processors"] == ["memory_limiter", "tail_sampling", "batch"]


def registered_config(renderer: Renderer) -> Any:
    return load_yaml(renderer.rendered(find_template("tracing", "local/collector.yaml"), "registered"))


def test_tail_sampling_keeps_errors_slow_traces_and_a_share_of_the_rest(renderer: Renderer) -> None:
    config = registered_config(renderer)
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["processors"]["batch"].update(send_batch_maxsize=10), "batch.send_batch_maxsize"),
        (lambda c: c["exporters"].update(jaeger={"endpoint": "x:14250"}), "no 'jaeger' component"),
        (lambda c: c["processors"]["tail_sampling"]["policies"][1]["latency"].update(threshold=1), "latency.threshold"),
        (lambda c: c["processors"]["memory_limiter"].update(spike_limit_percentage=90), "spike < limit"),
        (lambda c: c["processors"]["tail_sampling"]["policies"][0]["status_code"].update(status_codes=["5xx"]), "5xx"),
    ],
)
def test_negative_an_unknown_key_or_value_is_reported(renderer: Renderer, edit: Any, expected: str) -> None:
    config = registered_config(renderer)
    assert config_problems(config) == []
    edit(config)
    assert any(expected in problem for problem in config_problems(config)), config_problems(config)
