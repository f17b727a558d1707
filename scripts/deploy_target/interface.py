"""The verbs that drills and operator scripts use, whatever runs the services.

Two implementations: ``local`` (supervisor on this machine, the default; ``scripts.local.stack``)
and ``nomad`` (a real cluster, chosen when NOMAD_ADDR is set; ``scripts.deploy_target.nomad``).
See ``scripts.deploy_target.select``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Protocol

from services.common.config import TlsFiles


class PlatformError(Exception):
    """An operation on the platform failed; the message says what to do about it."""


# How long an operator command waits for the renderer to finish writing a certificate and key pair.
OPERATOR_TLS_WAIT_S = 15.0


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """One deployable unit (a supervised process, or a Nomad job/group)."""

    name: str
    state: str  # RUNNING, STOPPED, STARTING, FAILED, ...
    healthy: bool | None  # None when there is no health check to ask
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a person or a drill reaches the platform."""

    services: dict[str, str]  # service name -> base URL or host:port
    prometheus: str
    alertmanager: str
    incidents: str
    grafana: str | None = None
    jaeger: str | None = None
    vault: str | None = None
    # The operator's client certificate for services that require mTLS (None: plain HTTP).
    operator_tls: TlsFiles | None = None

    def client_ssl(self, server_name: str | None = None) -> ssl.SSLContext | None:
        """An SSL context presenting the operator certificate, or None when no mTLS is in use."""
        if self.operator_tls is None:
            return None
        from services.common.tls import TlsError, TlsMaterial
        from services.common.waiting import wait_until

        files = self.operator_tls

        def matching_pair() -> ssl.SSLContext | None:
            try:
                return TlsMaterial(files, "operator").client_context(server_name)
            except TlsError:
                return None

        # The renderer writes the certificate and the key one after the other: a pair read between
        # the two writes does not match. Wait (bounded) for the second write instead of failing.
        return wait_until(
            matching_pair,
            timeout_s=OPERATOR_TLS_WAIT_S,
            interval_s=0.2,
            what=f"a matching certificate and key in {files.cert.parent}",
        )


@dataclass(frozen=True, slots=True)
class AdminAnswer:
    """What one instance answered to an operator's admin call (``Platform.admin_call``)."""

    instance: str  # host:port that answered
    status: int
    body: Any  # the JSON answer, or its text when it is not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        """The error message of a refused call (the services' JSON error body), or the text."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("message", ""))
        return str(self.body)[:300]


# Ports an admin call can go to: the service's own (mTLS) listener, or its plain ops port.
ADMIN_PORTS = ("api", "ops")


class Platform(Protocol):
    name: str

    def start(self, unit: str) -> None: ...

    def stop(self, unit: str) -> None: ...

    def restart(self, unit: str) -> None: ...

    def scale(self, unit: str, count: int) -> None: ...

    def status(self) -> list[UnitStatus]: ...

    def set_fault(self, service: str, *, latency_ms: int = 0, error_ratio: float = 0.0) -> None:
        """Switch the runtime fault injection of a service (response hosts it)."""
        ...

    def admin_call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        port: str = "api",
        body: dict[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> list[AdminAnswer]:
        """Call ``path`` on every instance of ``service`` as the operator, with that service's own admin
        token (response's fault endpoints on ``port="api"``; the debugging endpoints on ``port="ops"``).
        Every answer is returned, refusals included; no instance, or one unreachable, raises
        PlatformError."""
        ...

    def endpoints(self) -> Endpoints: ...

    def break_startup(self, unit: str) -> None:
        """Make a service die at start-up from now on (a configuration value it refuses) and restart it so."""
        ...

    def restore_startup(self, unit: str) -> None:
        """Undo ``break_startup``: the service starts with its own configuration again (nothing if unbroken)."""
        ...

    def partition_refusal(self, caller: str, callee: str) -> str | None:
        """Why ``partition`` cannot cut ``caller`` off from ``callee`` on this platform (None: it can)."""
        ...

    def partition(self, caller: str, callee: str) -> None:
        """Cut ``caller`` off from ``callee``: its calls get no answer while ``callee`` serves everyone else."""
        ...

    def heal_partition(self, caller: str, callee: str) -> None:
        """Undo ``partition`` (nothing if there is none)."""
        ...
