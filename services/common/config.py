"""Configuration from environment variables, read once at start-up into frozen objects.

A bad value fails fast with a ``ConfigError`` that names the variable, what was wrong and
what is accepted, so an operator can fix a job file without reading code.

Loaders take the environment as a mapping: a service's entry point passes the process
environment, tests pass a dict. Which variables a loader reads is found by running it
(``variables_read``), so no list of names is kept by hand beside the code that reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common import catalog
from services.common.profiles import DRILL, TimingProfile, profile


class ConfigError(ValueError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Env:
    """Typed, validated access to one environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def optional_str(self, name: str) -> str | None:
        return self.raw(name)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"expected a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, f"expected true/false (or on/off, 1/0), got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=1, maximum=65535)

    def path(self, name: str, default: Path) -> Path:
        raw = self.raw(name)
        return Path(raw) if raw else default

    def optional_path(self, name: str) -> Path | None:
        raw = self.raw(name)
        return Path(raw) if raw else None


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The local platform's state directory (``.firedrill`` beside the repo by default).

    Scripts may rely on the process environment; services pass the one they were configured from.
    """
    return Env(environ).path("FIREDRILL_STATE_DIR", Path.cwd() / ".firedrill").resolve()


def package_version() -> str:
    """The version of the installed firedrill distribution (``make setup`` and the image install it)."""
    from importlib import metadata

    try:
        return metadata.version("firedrill")
    except metadata.PackageNotFoundError:
        return "unknown"  # a source tree that was never pip-installed


# A version goes into discovery metadata, Prometheus labels and supervisor program names.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _version(env: Env) -> str:
    value = env.text("FIREDRILL_VERSION", "") or package_version()
    if not VERSION_PATTERN.fullmatch(value):
        raise ConfigError(
            "FIREDRILL_VERSION",
            f"1 to 63 letters, digits, '.', '_' or '-' (starting with a letter or digit), got {value!r}",
        )
    return value


TLS_FILE_VARIABLES = ("FIREDRILL_TLS_CERT_FILE", "FIREDRILL_TLS_KEY_FILE", "FIREDRILL_TLS_CA_FILE")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path

    def as_environment(self) -> dict[str, str]:
        """The variables that hand these files to a service: what ``ServiceConfig.from_env`` reads."""
        return dict(zip(TLS_FILE_VARIABLES, (str(self.cert), str(self.key), str(self.ca)), strict=True))


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What every service reads: where to listen, how to be found, how to be observed."""

    name: str
    # What this instance runs (discovery metadata and the ``version`` label of its series).
    version: str
    bind_host: str
    port: int
    metrics_port: int | None
    advertise_host: str
    discovery: str
    self_register: bool
    registry_dir: Path
    consul_addr: str | None
    # The CA that signs an https Consul agent's certificate (None: the system trust store).
    consul_ca_file: Path | None
    timing: TimingProfile
    log_level: str
    instrumentation: bool
    # Share of new requests an edge service starts a trace for; internal services never start one.
    trace_ratio: float
    starts_traces: bool
    otlp_endpoint: str | None
    trace_file: Path | None
    shutdown_grace_s: float
    tls: TlsFiles | None
    # This service's own admin token (FIREDRILL_ADMIN_TOKEN_FILE), read once rendered: it opens the
    # debugging endpoints of the ops port. None keeps them shut (every debug call is a 403).
    admin_token_file: Path | None = None

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str]) -> ServiceConfig:
        env = Env(environ)
        spec = catalog.service(name)
        bind_host = env.text("FIREDRILL_BIND_HOST", "127.0.0.1")
        offset = _port_offset(environ)
        timing = _timing_profile(env)
        tls_paths = [env.optional_path(variable) for variable in TLS_FILE_VARIABLES]
        if any(tls_paths) and not all(tls_paths):
            raise ConfigError(
                "FIREDRILL_TLS_CERT_FILE",
                "set FIREDRILL_TLS_CERT_FILE, FIREDRILL_TLS_KEY_FILE and FIREDRILL_TLS_CA_FILE together",
            )
        cert, key, ca = tls_paths
        return cls(
            name=name,
            version=_version(env),
            bind_host=bind_host,
            port=env.port("FIREDRILL_PORT", spec.port + offset),
            metrics_port=(
                env.port("FIREDRILL_METRICS_PORT", spec.metrics_port + offset)
                if spec.metrics_port is not None
                else None
            ),
            advertise_host=env.text("FIREDRILL_ADVERTISE_HOST", bind_host),
            discovery=env.choice("FIREDRILL_DISCOVERY", "local", ("local", "consul")),
            self_register=env.flag("FIREDRILL_SELF_REGISTER", True),
            registry_dir=env.path("FIREDRILL_REGISTRY_DIR", state_dir(environ) / "registry"),
            consul_addr=env.optional_str("CONSUL_HTTP_ADDR"),
            consul_ca_file=env.optional_path("CONSUL_CACERT"),
            timing=timing,
            log_level=env.choice("FIREDRILL_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            instrumentation=env.flag("FIREDRILL_INSTRUMENTATION", True),
            trace_ratio=env.number("FIREDRILL_TRACE_RATIO", 0.1, minimum=0.0, maximum=1.0),
            starts_traces=spec.tier == catalog.Tier.EDGE,
            otlp_endpoint=env.optional_str("OTEL_EXPORTER_OTLP_ENDPOINT"),
            trace_file=env.optional_path("FIREDRILL_TRACE_FILE"),
            shutdown_grace_s=env.number("FIREDRILL_SHUTDOWN_GRACE_S", 10.0, minimum=0.0, maximum=300.0),
            tls=TlsFiles(cert, key, ca) if cert and key and ca else None,
            admin_token_file=env.optional_path("FIREDRILL_ADMIN_TOKEN_FILE"),
        )


def _port_offset(environ: Mapping[str, str]) -> int:
    try:
        return catalog.port_offset(environ)
    except ValueError as exc:
        raise ConfigError("FIREDRILL_PORT_OFFSET", str(exc)) from None


def _timing_profile(env: Env) -> TimingProfile:
    try:
        return profile(env.text("FIREDRILL_PROFILE", DRILL.name))
    except ValueError as exc:
        raise ConfigError("FIREDRILL_PROFILE", str(exc)) from None


class _RecordingEnviron(Mapping[str, str]):
    """An environment mapping that remembers every name looked up in it, in order."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.names: dict[str, None] = {}

    def __getitem__(self, name: str) -> str:
        self.names[name] = None
        return self._environ[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def variables_read(
    load: Callable[[Mapping[str, str]], object], sample: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The variables ``load`` looks up when it loads ``sample`` (by default an empty environment).

    A name read only on some branch is found only if ``sample`` takes that branch.
    """
    recording = _RecordingEnviron(sample or {})
    load(recording)
    return tuple(recording.names)
