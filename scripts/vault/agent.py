"""The local platform's secret renderer: what Vault Agent / Nomad template blocks do on a cluster.

    python -m scripts.vault.agent --state-dir .firedrill --addr http://127.0.0.1:8200 \\
        --bootstrap-token-file .firedrill/vault/root-token

For each identity (every catalog service, plus the observers ``prometheus``, ``alertmanager`` and
``operator``) it logs in with that identity's own AppRole (so it can only do what the identity's
policy allows), and writes into ``<state>/secrets/<identity>/`` (folder 0700, files 0600, each
replaced atomically, only when the content changed) what ``scripts.vault.identity_requests`` says
the identity asks Vault for -- the same asks as the Nomad jobs' templates:

- ``cert.pem`` (leaf + issuing CA), ``key.pem``, ``ca.pem`` (the platform CA bundle); a service's
  certificate names ``<name>.service.consul`` (CN), ``localhost`` and 127.0.0.1;
- ``jwt-keys.json`` for auth (the signing key set), ``jwt-public.json`` for the services that
  verify tokens (metadata, rating, movie), and ``admin-token`` for every service (its own).

Certificates are re-issued at ``cert_ttl_s * cert_renew_fraction`` of their life (profile);
KV secrets are re-read every ``--kv-poll-s`` (an identity without any looks up its own token
instead), so every identity calls Vault at that interval. When Vault does not answer, the agent
retries with capped exponential backoff and jitter, and ``vault_reachable{service}`` reads 0 --
after a failed call, or when the identity's last successful call is older than its interval
allows (a frozen Vault holds calls until they time out) -- while the services keep serving with
the files they have. Services notice new files themselves
(they poll the files' mtime every second and also reload on SIGHUP), so the agent needs no pid.

With ``--bootstrap-token-file`` (local platform) it first runs the bootstrap with that token,
which writes the AppRole credentials, and runs it again if the dev server lost its in-memory
state (a restarted OpenBao). A new CA is then written to every ``ca.pem`` *next to* the old one,
and certificates from the new CA follow a moment later, so no handshake falls between the two.

``/metrics`` and ``/health`` (200 once every identity has its files) listen on ``--metrics-port``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hvac import exceptions as hvac_errors
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scripts.vault.bootstrap import admin_token_seed_files, run_bootstrap
from scripts.vault.identity_requests import ADMIN_TOKEN, JWT_KEYS, JWT_PUBLIC, requests_for
from scripts.vault.private_file import write_private
from scripts.vault.vaultapi import (
    APPROLE_MOUNT,
    KV_MOUNT,
    PKI_INT,
    PKI_ROOT,
    client,
    identities,
)
from services.common import catalog
from services.common.profiles import TimingProfile, profile
from services.common.secrets_metrics import VaultContact, vault_reachable_gauge
from services.common.waiting import TimedOut, wait_until

log = logging.getLogger("scripts.vault.agent")

AGENT_PORT = catalog.infra("vault-agent").port  # the local platform shifts it by FIREDRILL_PORT_OFFSET
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 15.0
CA_PROPAGATION_S = 2.5  # > 2 x the services' 1 s file poll: every service trusts a new CA before it is used


class TransientVaultError(RuntimeError):
    """Vault did not answer or refused for a reason that retrying may fix."""


@dataclass
class Files:
    folder: Path

    @property
    def cert(self) -> Path:
        return self.folder / "cert.pem"

    @property
    def key(self) -> Path:
        return self.folder / "key.pem"

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def jwt_keys(self) -> Path:
        return self.folder / JWT_KEYS.file

    @property
    def jwt_public(self) -> Path:
        return self.folder / JWT_PUBLIC.file

    @property
    def admin_token(self) -> Path:
        return self.folder / ADMIN_TOKEN.file


def secrets_folder(state_dir: Path, identity: str) -> Path:
    return state_dir / "secrets" / identity


def approle_folder(state_dir: Path) -> Path:
    return state_dir / "vault" / "approle"


def _write_if_changed(path: Path, content: bytes) -> bool:
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    write_private(path, content)
    return True


@dataclass
class IdentityState:
    name: str
    files: Files
    token: str | None = None
    token_expires: float = 0.0
    cert_due: float = 0.0
    kv_due: float = 0.0
    failures: int = 0
    rendered: bool = False
    not_after: float | None = None


@dataclass
class AgentSettings:
    addr: str
    state_dir: Path
    timing: TimingProfile
    identities: tuple[str, ...]
    bootstrap_token_file: Path | None = None
    cert_ttl_s: int | None = None
    kv_poll_s: float = 2.0
    request_timeout_s: float = 3.0


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.reachable = vault_reachable_gauge(self.registry)
        self.renders = Counter(
            "vault_agent_renders_total",
            "Render attempts by identity and outcome (ok, vault_error).",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.cert_not_after = Gauge(
            "vault_agent_cert_not_after_timestamp_seconds",
            "When the certificate last written for the identity expires (unix time).",
            ["service"],
            registry=self.registry,
        )


class Agent:
    def __init__(self, settings: AgentSettings, metrics: AgentMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or AgentMetrics()
        self.stop_event = threading.Event()
        self.states = {
            name: IdentityState(name, Files(secrets_folder(settings.state_dir, name))) for name in settings.identities
        }
        self.known_cas: dict[bytes, x509.Certificate] = {}
        self.bootstrapped = False
        self.contacts = {name: VaultContact(self.reachable_window_s) for name in settings.identities}
        for name, contact in self.contacts.items():
            self.metrics.reachable.labels(name).set_function(contact.reachable)
        for state in self.states.values():
            state.files.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(state.files.folder, 0o700)
            self._remember_cas(state.files.ca)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def reachable_window_s(self) -> float:
        """How old an identity's last successful call may be: its interval, a call in flight, and a pass's slack."""
        return 2 * self.settings.kv_poll_s + self.settings.request_timeout_s

    @property
    def cert_ttl_s(self) -> int:
        return self.settings.cert_ttl_s or self.settings.timing.cert_ttl_s

    def _client(self, token: str | None = None) -> hvac.Client:
        return client(self.settings.addr, token, timeout_s=self.settings.request_timeout_s)

    def _remember_cas(self, source: Path | bytes) -> bool:
        """Add CA certificates (file or PEM) to the bundle; True if one was new."""
        try:
            pem = source.read_bytes() if isinstance(source, Path) else source
        except FileNotFoundError:
            return False
        added = False
        now = time.time()
        for cert in x509.load_pem_x509_certificates(pem) if pem.strip() else []:
            if cert.not_valid_after_utc.timestamp() < now:
                continue
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in self.known_cas:
                self.known_cas[der] = cert
                added = True
        return added

    def _ca_bundle(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.known_cas.values())

    @property
    def healthy(self) -> bool:
        return all(s.rendered for s in self.states.values())

    # -- bootstrap ---------------------------------------------------------------------------

    def bootstrap(self) -> None:
        token_file = self.settings.bootstrap_token_file
        if token_file is None:
            return
        vault = self._client(token_file.read_text().strip())
        try:
            report = run_bootstrap(
                vault,
                timing=self.settings.timing,
                approle_dir=approle_folder(self.settings.state_dir),
                # A restarted dev server keeps each service's admin token: the one rendered last.
                admin_token_seeds=admin_token_seed_files(self.settings.state_dir / "secrets"),
                jwt_keys_seed=self.states["auth"].files.jwt_keys if "auth" in self.states else None,
                emit=lambda line: log.info("bootstrap", extra={"step": line.strip()}),
            )
        except (hvac_errors.VaultError, OSError) as exc:
            raise TransientVaultError(f"bootstrap: {exc.__class__.__name__}") from None
        finally:
            vault.adapter.close()
        log.info("bootstrap done", extra={"changes": len(report.changes)})
        self.bootstrapped = True
        for state in self.states.values():
            state.token = None
        self._propagate_new_cas()

    def _propagate_new_cas(self) -> None:
        """Fetch the CA chain (unauthenticated endpoints); if it is new, publish it before any certificate from it."""
        vault = self._client()
        try:
            chain = str(vault.secrets.pki.read_ca_certificate_chain(mount_point=PKI_INT)).encode()
            root = str(vault.secrets.pki.read_ca_certificate(mount_point=PKI_ROOT)).encode()
        except (hvac_errors.VaultError, OSError) as exc:
            raise TransientVaultError(f"CA chain: {exc.__class__.__name__}") from None
        finally:
            vault.adapter.close()
        if not (self._remember_cas(chain) | self._remember_cas(root)):
            return
        bundle = self._ca_bundle()
        had_certs = False
        for state in self.states.values():
            had_certs |= state.files.cert.exists()
            _write_if_changed(state.files.ca, bundle)
        log.info("ca bundle updated", extra={"cas": len(self.known_cas)})
        if had_certs:
            self.stop_event.wait(CA_PROPAGATION_S)

    # -- rendering ---------------------------------------------------------------------------

    def _login(self, state: IdentityState) -> str:
        if state.token and time.time() < state.token_expires - 30:
            return state.token
        folder = approle_folder(self.settings.state_dir) / state.name
        try:
            role_id = (folder / "role-id").read_text().strip()
            secret_id = (folder / "secret-id").read_text().strip()
        except OSError:
            raise TransientVaultError(f"no AppRole credentials for {state.name} in {folder}") from None
        vault = self._client()
        try:
            auth = vault.auth.approle.login(role_id, secret_id, mount_point=APPROLE_MOUNT)["auth"]
        except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath, hvac_errors.Forbidden) as exc:
            # The server no longer knows this role/secret (or the AppRole mount at all): a dev
            # server that restarted empty, or credentials revoked.
            log.warning("approle login refused", extra={"identity": state.name, "reason": exc.__class__.__name__})
            raise LostState(state.name) from None
        finally:
            vault.adapter.close()
        state.token = str(auth["client_token"])
        state.token_expires = time.time() + int(auth.get("lease_duration") or 0)
        return state.token

    def render(self, state: IdentityState, now: float) -> None:
        vault = self._client(self._login(state))
        try:
            if now >= state.cert_due or not state.files.cert.exists():
                self._issue(vault, state)
            if now >= state.kv_due:
                self._read_kv(vault, state)
                state.kv_due = now + self.settings.kv_poll_s
        except hvac_errors.Forbidden:
            state.token = None  # expired or revoked token: log in again next time
            raise TransientVaultError(f"{state.name}: forbidden") from None
        finally:
            vault.adapter.close()

    def _issue(self, vault: hvac.Client, state: IdentityState) -> None:
        name = state.name
        pki = requests_for(name).pki
        if pki is None:
            return
        issued = vault.write_data(f"{PKI_INT}/issue/{pki.role}", data=pki.data(self.cert_ttl_s))["data"]
        chain = issued.get("ca_chain") or [issued["issuing_ca"]]
        if self._remember_cas("\n".join(chain).encode()):
            self._propagate_known(state)
        _write_if_changed(state.files.ca, self._ca_bundle())
        write_private(state.files.key, issued["private_key"].encode() + b"\n")
        write_private(state.files.cert, (issued["certificate"] + "\n" + issued["issuing_ca"] + "\n").encode())
        cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
        state.not_after = cert.not_valid_after_utc.timestamp()
        lifetime = state.not_after - time.time()
        state.cert_due = time.time() + max(1.0, lifetime * self.settings.timing.cert_renew_fraction)
        self.metrics.cert_not_after.labels(name).set(state.not_after)
        log.info(
            "certificate written",
            extra={"identity": name, "serial": f"{cert.serial_number:x}", "not_after": state.not_after},
        )

    def _propagate_known(self, state: IdentityState) -> None:
        """A CA this agent had not seen: publish it everywhere first, then give services time to load it."""
        bundle = self._ca_bundle()
        for other in self.states.values():
            _write_if_changed(other.files.ca, bundle)
        log.info("ca bundle updated", extra={"cas": len(self.known_cas), "identity": state.name})
        if any(s.files.cert.exists() for s in self.states.values()):
            self.stop_event.wait(CA_PROPAGATION_S)

    def _kv(self, vault: hvac.Client, path: str) -> dict[str, Any]:
        answer = vault.secrets.kv.v2.read_secret_version(path, mount_point=KV_MOUNT, raise_on_deleted_version=True)
        data: dict[str, Any] = answer["data"]["data"]
        return data

    def _read_kv(self, vault: hvac.Client, state: IdentityState) -> None:
        requests = requests_for(state.name).kv
        if not requests:
            vault.auth.token.lookup_self()  # nothing to read: the call still says whether Vault answers
            return
        changed = []
        for kv in requests:
            data = self._kv(vault, kv.path)
            content = json.dumps(data, sort_keys=True) if kv.field is None else str(data[kv.field])
            if _write_if_changed(state.files.folder / kv.file, content.encode()):
                changed.append(kv.file)
        if changed:
            log.info("secrets written", extra={"identity": state.name, "files": ",".join(changed)})

    # -- the loop ----------------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures, 10)) * random.uniform(0.8, 1.2))

    def step(self) -> float:
        """Render whatever is due; returns how long to sleep until the next thing is due."""
        now = time.time()
        if self.settings.bootstrap_token_file is not None and not self.bootstrapped:
            try:
                self.bootstrap()
            except TransientVaultError as exc:
                for contact in self.contacts.values():
                    contact.failed()
                failures = max(s.failures for s in self.states.values()) + 1
                for state in self.states.values():
                    state.failures = failures
                log.warning("vault unreachable", extra={"reason": str(exc), "retry_in_s": self._backoff(failures)})
                return self._backoff(failures)
        next_due = now + self.settings.kv_poll_s
        for state in self.states.values():
            due = min(state.cert_due, state.kv_due)
            if due > now:
                next_due = min(next_due, due)
                continue
            try:
                self.render(state, now)
            except LostState:
                log.warning("vault lost its state (restarted dev server?)", extra={"identity": state.name})
                self.metrics.renders.labels(state.name, "lost_state").inc()
                self.bootstrapped = False
                for other in self.states.values():
                    other.cert_due = other.kv_due = 0.0
                return 0.0 if self.settings.bootstrap_token_file is not None else self._backoff(state.failures)
            except (TransientVaultError, hvac_errors.VaultError, OSError) as exc:
                state.failures += 1
                retry = self._backoff(state.failures)
                state.cert_due = min(state.cert_due, now + retry) if state.rendered else now + retry
                state.kv_due = now + retry
                self.contacts[state.name].failed()
                self.metrics.renders.labels(state.name, "vault_error").inc()
                log.warning(
                    "render failed; keeping current files",
                    extra={"identity": state.name, "reason": exc.__class__.__name__, "retry_in_s": round(retry, 2)},
                )
                next_due = min(next_due, now + retry)
                continue
            state.failures = 0
            state.rendered = True
            self.contacts[state.name].succeeded()
            self.metrics.renders.labels(state.name, "ok").inc()
            next_due = min(next_due, state.cert_due, state.kv_due)
        return max(0.0, next_due - time.time())

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                delay = self.step()
                failures = 0
            except Exception as exc:  # a bug or an answer we did not expect must not end the renderer
                failures += 1
                delay = self._backoff(failures)
                log.exception("agent step failed", extra={"reason": exc.__class__.__name__, "retry_in_s": delay})
                self.bootstrapped = False
            self.stop_event.wait(min(delay, BACKOFF_MAX_S))


class LostState(Exception):
    """Vault no longer knows an identity's AppRole."""


def serve_metrics(agent: Agent, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(agent.metrics.registry), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/health"):
                ok = agent.healthy
                body = json.dumps({"status": "healthy" if ok else "rendering", "service": "vault-agent"}).encode()
                status, kind = (200 if ok else 503), "application/json"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="agent-metrics", daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    from services.common.logs import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m scripts.vault.agent",
        description="Render each identity's certificate, key, CA bundle and secrets from Vault into "
        "<state>/secrets/<identity>/ and keep them fresh (AppRole login per identity).",
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--addr", default=os.environ.get("VAULT_ADDR", "http://127.0.0.1:8200"))
    parser.add_argument("--profile", help="timing profile (cert TTL and renew fraction); default FIREDRILL_PROFILE")
    parser.add_argument("--identities", help="comma-separated (default: every catalog service, prometheus, operator)")
    parser.add_argument("--bootstrap-token-file", type=Path, help="run the bootstrap first with this token (local)")
    parser.add_argument("--metrics-port", type=int, help="serve /metrics and /health on 127.0.0.1:<port>")
    parser.add_argument("--cert-ttl-s", type=int, help="override the profile's certificate TTL (tests, drills)")
    parser.add_argument("--kv-poll-s", type=float, default=2.0, help="how often to re-read KV secrets")
    parser.add_argument("--once", action="store_true", help="render everything once and exit (0 if all rendered)")
    args = parser.parse_args(argv)
    configure_logging("vault-agent", os.environ.get("FIREDRILL_LOG_LEVEL", "INFO"))
    names = tuple(n for n in (args.identities or ",".join(identities())).split(",") if n)
    settings = AgentSettings(
        addr=args.addr.rstrip("/"),
        state_dir=args.state_dir.resolve(),
        timing=profile(args.profile),
        identities=names,
        bootstrap_token_file=args.bootstrap_token_file,
        cert_ttl_s=args.cert_ttl_s,
        kv_poll_s=args.kv_poll_s,
    )
    agent = Agent(settings)
    if args.once:

        def rendered() -> bool:
            if not agent.healthy:
                agent.stop_event.wait(min(agent.step(), 1.0))
            return agent.healthy

        with contextlib.suppress(TimedOut):
            wait_until(rendered, timeout_s=30, interval_s=0, what="every identity rendered")
        return 0 if agent.healthy else 1
    server = serve_metrics(agent, args.metrics_port) if args.metrics_port else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop_event.set())
    log.info("agent started", extra={"identities": ",".join(names), "addr": settings.addr})
    try:
        agent.run()
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.shutdown()
        log.info("agent stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
