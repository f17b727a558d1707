"""What each identity asks Vault for -- the local agent's table, the same asks as the Nomad jobs.

The local platform rehearses the cluster, so its renderer (``scripts.vault.agent``) asks Vault for
exactly what the jobs' ``template`` blocks ask for: the job generator (``scripts.cluster.jobgen``)
writes those blocks from this table, and ``tests/infra/test_vault_templates.py`` checks the rendered
jobs against it:

- a certificate from the identity's own PKI role: a service's common name is the name its
  clients pin, ``<name>.service.consul``, plus ``localhost`` and the IP SAN 127.0.0.1 (on a
  cluster too: the PKI role refuses node addresses); a client-only identity (``tls.OBSERVERS``) is
  ``<name>`` with the alt name ``<name>.service.consul`` and no IP SAN;
- the KV secrets its service reads: the JWT verification keys for the services that verify auth's
  tokens, the signing key set for auth, and for every service its own admin token (it guards the
  debugging endpoints of its ops port, and response's fault switch): ``secret/firedrill/<name>/admin``,
  which only that service's policy reads, so one service's token opens nothing on another.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.vault.vaultapi import ADMIN_TOKEN_FIELD, JWT_KEYS_PATH, JWT_PUBLIC_PATH, KV_MOUNT, admin_token_path
from services.common import catalog
from services.common.tls import OBSERVERS, service_dns_name

# Services that verify auth's tokens: their config reads FIREDRILL_JWT_PUBLIC_KEYS_FILE as an input
# (auth reads that variable too, but only as where to publish; it signs with the key set).
TOKEN_VERIFIERS: tuple[str, ...] = ("metadata", "rating", "movie")
LOOPBACK_IP_SANS: tuple[str, ...] = ("127.0.0.1",)


@dataclass(frozen=True, slots=True)
class PkiRequest:
    """One issue call: ``pki_int/issue/<role>`` with these names."""

    role: str
    common_name: str
    alt_names: tuple[str, ...]
    ip_sans: tuple[str, ...]

    def data(self, ttl_s: int) -> dict[str, str]:
        data = {"common_name": self.common_name, "alt_names": ",".join(self.alt_names), "ttl": f"{ttl_s}s"}
        if self.ip_sans:
            data["ip_sans"] = ",".join(self.ip_sans)
        return data


@dataclass(frozen=True, slots=True)
class KvRequest:
    """A KV v2 secret (``secret/<path>``) rendered into a file: one field as text, or the data map as JSON.

    ``file`` is its name in the identity's secrets folder (locally) or the task's secrets/ (on a
    cluster); ``env`` is the variable that names the file to the service, on both.
    """

    path: str
    field: str | None
    file: str
    env: str
    purpose: str

    @property
    def api_path(self) -> str:
        return f"{KV_MOUNT}/data/{self.path}"


@dataclass(frozen=True, slots=True)
class IdentityRequests:
    identity: str
    pki: PkiRequest | None
    kv: tuple[KvRequest, ...]


JWT_PUBLIC = KvRequest(
    JWT_PUBLIC_PATH,
    None,
    "jwt-public.json",
    "FIREDRILL_JWT_PUBLIC_KEYS_FILE",
    "Verification keys only (no private key): tokens issued by auth are checked locally.",
)
JWT_KEYS = KvRequest(
    JWT_KEYS_PATH,
    None,
    "jwt-keys.json",
    "FIREDRILL_JWT_KEY_FILE",
    "The signing key ring (active kid + previous keys that still validate until their tokens expire).",
)
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 (a file name, not a secret)


def admin_token_request(service: str) -> KvRequest:
    """``service``'s own admin token: its ops port's debugging endpoints (and response's fault switch)."""
    return KvRequest(
        admin_token_path(service),
        ADMIN_TOKEN_FIELD,
        ADMIN_TOKEN_FILE,
        "FIREDRILL_ADMIN_TOKEN_FILE",
        f"{service}'s own admin token: it guards the debugging endpoints of the ops port"
        + (" and the fault-injection endpoints." if service == "response" else "."),
    )


# response's: the one the drills' fault switch uses.
ADMIN_TOKEN = admin_token_request("response")


def requests_for(identity: str) -> IdentityRequests:
    if identity in OBSERVERS:
        pki = PkiRequest(identity, identity, (service_dns_name(identity),), ())
        return IdentityRequests(identity, pki, ())
    if identity not in catalog.service_names():
        raise KeyError(f"{identity!r} is neither a catalog service nor an observer ({', '.join(OBSERVERS)})")
    pki = PkiRequest(identity, service_dns_name(identity), ("localhost",), LOOPBACK_IP_SANS)
    kv: list[KvRequest] = []
    if identity in TOKEN_VERIFIERS:
        kv.append(JWT_PUBLIC)
    if identity == "auth":
        kv.append(JWT_KEYS)
    kv.append(admin_token_request(identity))
    return IdentityRequests(identity, pki, tuple(kv))
