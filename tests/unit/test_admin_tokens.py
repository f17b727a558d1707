"""Every catalog service holds its own admin token: what it asks Vault for, what its policy reads,
what the bootstrap seeds, and that one service's token opens nothing on another (the ops ports'
debugging endpoints, response's fault switch)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hvac import exceptions as hvac_errors
from prometheus_client import CollectorRegistry

from scripts.local.programs import StateLayout, service_environment
from scripts.vault.bootstrap import Bootstrap, Report, admin_token_seed_files, policy_text
from scripts.vault.identity_requests import ADMIN_TOKEN, requests_for
from scripts.vault.local import service_env
from scripts.vault.vaultapi import ADMIN_TOKEN_PATH, KV_MOUNT, admin_token_path, identities
from services.common import catalog
from services.common.admin_token import guard_debug_endpoints, read_admin_token
from services.common.config import ServiceConfig
from services.common.debug_endpoints import DEBUG_TOKEN_KEY
from services.common.lifecycle import ops_app
from services.common.secret_files import SecretFileError
from services.common.tls import OBSERVERS
from services.common.web import create_ops_app
from services.response.app import create_app
from services.response.config import ResponseConfig

SERVICES = catalog.service_names()
Client = TestClient[web.Request, web.Application]


# -- what each identity asks for, and what its policy lets it read ------------------------------------


def test_every_service_asks_for_its_own_admin_token_and_only_that_one() -> None:
    paths = {}
    for service in SERVICES:
        admin = [kv for kv in requests_for(service).kv if kv.env == "FIREDRILL_ADMIN_TOKEN_FILE"]
        assert len(admin) == 1, service
        assert admin[0].path == admin_token_path(service) == f"firedrill/{service}/admin"
        assert (admin[0].field, admin[0].file) == ("token", "admin-token")
        paths[service] = admin[0].path
    assert len(set(paths.values())) == len(SERVICES)  # no two services share a token
    assert ADMIN_TOKEN.path == ADMIN_TOKEN_PATH == paths["response"]  # the fault switch's token is response's
    for observer in OBSERVERS:  # prometheus, alertmanager, operator: no admin token rendered for them
        assert requests_for(observer).kv == ()


def _allows_read(policy: str, path: str) -> bool:
    """Vault's ACL match for the rules our policies use: an exact path, or a prefix ending in ``*``."""
    for rule, capabilities in re.findall(r'path "([^"]+)" \{ capabilities = \[([^]]*)\] \}', policy):
        if '"read"' not in capabilities:
            continue
        if rule == path or (rule.endswith("*") and path.startswith(rule[:-1])):
            return True
    return False


def test_each_service_policy_reads_its_own_admin_token_and_no_other() -> None:
    for holder in (*identities(), "grafana"):
        policy = policy_text(holder)
        for owner in SERVICES:
            api_path = f"{KV_MOUNT}/data/{admin_token_path(owner)}"
            assert _allows_read(policy, api_path) is (holder == owner), f"{holder} reading {owner}'s token"


def test_the_matcher_used_above_is_not_vacuous() -> None:
    policy = policy_text("movie")
    assert _allows_read(policy, "secret/data/firedrill/movie/admin")
    assert _allows_read(policy, "secret/data/firedrill/public/jwt")
    assert not _allows_read(policy, "secret/data/firedrill/movie-x/admin")
    assert not _allows_read(policy, "secret/data/firedrill/auth/jwt")


def test_the_local_platform_points_each_service_at_its_own_token_file(tmp_path: Path) -> None:
    state = StateLayout(tmp_path)
    for spec in catalog.SERVICES:
        expected = str(tmp_path / "secrets" / spec.name / "admin-token")
        assert service_env(tmp_path, spec.name)["FIREDRILL_ADMIN_TOKEN_FILE"] == expected
        assert service_environment(spec, state, "drill")["FIREDRILL_ADMIN_TOKEN_FILE"] == expected
        assert state.admin_token(spec.name) == Path(expected)
    assert state.admin_token_file == state.admin_token("response")


# -- the bootstrap: one token per service, kept across restarts, added to an older state ----------------


class FakeKv:
    """KV v2 as the bootstrap uses it: read (InvalidPath when absent), and create with check-and-set."""

    def __init__(self, stored: dict[str, dict[str, Any]]) -> None:
        self.stored = stored

    def read_secret_version(self, path: str, mount_point: str, raise_on_deleted_version: bool) -> dict[str, Any]:
        assert mount_point == KV_MOUNT
        if path not in self.stored:
            raise hvac_errors.InvalidPath()
        return {"data": {"data": dict(self.stored[path])}}

    def create_or_update_secret(
        self, path: str, secret: dict[str, Any], mount_point: str, cas: int | None = None
    ) -> None:
        if cas == 0 and path in self.stored:
            raise hvac_errors.InvalidRequest("check-and-set parameter did not match the current version")
        self.stored[path] = dict(secret)


def _bootstrap_secrets(stored: dict[str, dict[str, Any]], seeds: dict[str, Path] | None = None) -> Report:
    from services.common.profiles import DRILL

    vault: Any = SimpleNamespace(secrets=SimpleNamespace(kv=SimpleNamespace(v2=FakeKv(stored))))
    report = Report(emit=lambda _: None)
    Bootstrap(vault, DRILL, report, admin_token_seeds=seeds).secrets()
    return report


def test_the_bootstrap_generates_one_distinct_token_per_service() -> None:
    stored: dict[str, dict[str, Any]] = {}
    _bootstrap_secrets(stored)
    tokens = {service: stored[admin_token_path(service)]["token"] for service in SERVICES}
    assert len(set(tokens.values())) == len(SERVICES)
    assert all(len(token) >= 32 for token in tokens.values())
    again = _bootstrap_secrets(stored)
    assert not any("admin token" in change for change in again.changes)  # idempotent
    assert {service: stored[admin_token_path(service)]["token"] for service in SERVICES} == tokens


def test_a_state_from_before_per_service_tokens_gets_the_missing_ones_and_keeps_response_s() -> None:
    stored: dict[str, dict[str, Any]] = {ADMIN_TOKEN_PATH: {"token": "response-token-from-an-older-state"}}
    report = _bootstrap_secrets(stored)
    assert stored[ADMIN_TOKEN_PATH] == {"token": "response-token-from-an-older-state"}
    created = {service for service in SERVICES if any(f"{service} admin token" in c for c in report.changes)}
    assert created == set(SERVICES) - {"response"}


def test_a_restarted_dev_server_gets_back_the_tokens_rendered_last(tmp_path: Path) -> None:
    seeds = admin_token_seed_files(tmp_path)
    assert set(seeds) == set(SERVICES)
    seeds["movie"].parent.mkdir(parents=True)
    seeds["movie"].write_text("movie-token-rendered-before\n")
    seeds["hello"].parent.mkdir(parents=True)
    seeds["hello"].write_text("")  # an empty file seeds nothing
    stored: dict[str, dict[str, Any]] = {}
    _bootstrap_secrets(stored, seeds)
    assert stored[admin_token_path("movie")] == {"token": "movie-token-rendered-before"}
    assert stored[admin_token_path("hello")]["token"] not in ("", stored[admin_token_path("movie")]["token"])
    assert admin_token_seed_files(None) == {}


# -- the services: each ops port opens with its own token only ------------------------------------------


def _config(service: str, tmp_path: Path, token: str | None) -> ServiceConfig:
    environ = {"FIREDRILL_STATE_DIR": str(tmp_path)}
    if token is not None:
        file = tmp_path / "secrets" / service / "admin-token"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(token + "\n")
        environ["FIREDRILL_ADMIN_TOKEN_FILE"] = str(file)
    return ServiceConfig.from_env(service, environ)


async def test_a_service_reads_its_token_file_and_none_without_one(tmp_path: Path) -> None:
    assert await read_admin_token(_config("movie", tmp_path, "movie-secret")) == "movie-secret"
    assert await read_admin_token(_config("hello", tmp_path, None)) is None
    missing = ServiceConfig.from_env("rating", {"FIREDRILL_ADMIN_TOKEN_FILE": str(tmp_path / "never")})
    with pytest.raises(SecretFileError, match="never"):
        await read_admin_token(missing, timeout_s=0.2)


@pytest.fixture
async def ops_ports(tmp_path: Path) -> AsyncIterator[dict[str, Client]]:
    """hello's and movie's ops apps as their serve paths guard them, and response's app and ops app."""
    clients: dict[str, Client] = {}
    for service in ("hello", "movie"):
        ops = create_ops_app(service, CollectorRegistry())
        await guard_debug_endpoints(ops, _config(service, tmp_path, f"{service}-own-token"))
        clients[service] = TestClient(TestServer(ops))
    response_config = ResponseConfig.from_env({"FIREDRILL_STATE_DIR": str(tmp_path)})
    response = create_app(response_config, admin_token="response-own-token", metrics_registry=CollectorRegistry())
    response_ops = ops_app(response)
    # response's serve path hands its ops app the token it read itself: the guard keeps it.
    await guard_debug_endpoints(response_ops, _config("response", tmp_path, "a-different-file-token"))
    assert response_ops[DEBUG_TOKEN_KEY] == "response-own-token"
    clients["response"] = TestClient(TestServer(response_ops))
    clients["response-api"] = TestClient(TestServer(response))
    for client in clients.values():
        await client.start_server()
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_service_token_opens_its_own_debug_endpoints_only(ops_ports: dict[str, Client]) -> None:
    for owner in ("hello", "movie", "response"):
        own = await ops_ports[owner].get("/debug/tasks", headers=_bearer(f"{owner}-own-token"))
        assert own.status == 200, owner
        assert (await ops_ports[owner].get("/debug/tasks")).status == 401
        for other in ("hello", "movie", "response"):
            if other == owner:
                continue
            refused = await ops_ports[other].get("/debug/tasks", headers=_bearer(f"{owner}-own-token"))
            assert refused.status == 403, f"{owner}'s token on {other}'s ops port"
            assert (await refused.json())["error"]["code"] == "permission_denied"


async def test_another_service_token_cannot_switch_response_faults(ops_ports: dict[str, Client]) -> None:
    api = ops_ports["response-api"]
    body = {"latency_ms": 500, "error_ratio": 1.0}
    for thief in ("hello", "movie"):
        answer = await api.put("/admin/faults", json=body, headers=_bearer(f"{thief}-own-token"))
        assert answer.status == 403, thief
    assert (await api.put("/admin/faults", json=body)).status == 401
    faults = await api.get("/admin/faults", headers=_bearer("response-own-token"))
    assert faults.status == 200
    assert (await faults.json())["latency_ms"] == 0  # nothing was switched by the refused calls
