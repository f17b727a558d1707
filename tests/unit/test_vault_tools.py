"""Pure logic of the Vault tooling: key rotation windows, banner redaction, policies, idempotency compare."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from hvac import exceptions as hvac_errors

from scripts.vault import jwt_keys
from scripts.vault.bootstrap import (
    DEFAULT_NOMAD_JWKS_URL,
    JWKS_URL_ENV,
    Bootstrap,
    Report,
    _differs,
    nomad_jwks_url,
    policy_text,
)
from scripts.vault.devserver import REDACTED, redact
from scripts.vault.identity_requests import ADMIN_TOKEN, JWT_KEYS, JWT_PUBLIC, admin_token_request, requests_for
from scripts.vault.local import prepare, service_env
from scripts.vault.vaultapi import VaultToolError
from services.common.auth_tokens import KeyRing
from services.common.profiles import DRILL


def test_rotation_keeps_the_previous_key_for_verification_until_the_lifetime_has_passed() -> None:
    first = jwt_keys.new_key_set(max_token_lifetime_s=600)
    second, dropped = jwt_keys.rotate(first, now=1_000)
    assert dropped == []
    ring = KeyRing.parse(json.dumps(second))
    assert ring.active_kid == second["active_kid"] != first["active_kid"]
    assert set(ring.verification_keys) == {first["active_kid"], second["active_kid"]}
    assert set(ring.signing_keys) == {second["active_kid"]}  # the retired key lost its private half
    third, dropped = jwt_keys.rotate(second, now=1_500)  # first retired 500 s ago: still kept
    assert dropped == []
    fourth, dropped = jwt_keys.rotate(third, now=1_601)  # 601 s > 600 s: no token it signed lives
    assert dropped == [first["active_kid"]]
    assert first["active_kid"] not in {k["kid"] for k in fourth["keys"]}
    public = jwt_keys.public_set(fourth)
    assert "PRIVATE" not in json.dumps(public)
    assert len(public["keys"]) == len(fourth["keys"])


def test_the_dev_server_banner_is_redacted() -> None:
    assert redact("Root Token: abc123\n", "abc123") == f"Root Token: {REDACTED}\n"
    assert redact("Unseal Key: Zm9vYmFy=\n", "abc123") == f"Unseal Key: {REDACTED}\n"
    assert redact("token abc123 used", "abc123") == f"token {REDACTED} used"
    assert redact("core: vault is unsealed", "abc123") == "core: vault is unsealed"


def test_a_policy_names_only_its_own_paths() -> None:
    text = policy_text("hello")
    assert 'path "pki_int/issue/hello"' in text
    assert 'path "secret/data/firedrill/hello/*"' in text
    assert "response" not in text
    assert "auth/jwt" not in text
    assert "*" not in text.replace("hello/*", "")


def test_the_idempotency_compare_ignores_list_order_and_unknown_fields() -> None:
    assert _differs({"a": ["y", "x"], "b": 1}, {"a": ["x", "y"], "b": 1, "unknown": True}) == []
    assert _differs({"a": "x,y"}, {"a": ["y", "x"]}) == []
    assert _differs({"a": ["x"], "b": 2}, {"a": ["x"], "b": 3}) == ["b"]
    assert _differs({"cidrs": None}, {"cidrs": []}) == []


def test_prepare_gives_the_local_platform_programs_and_env_without_the_token(tmp_path: Path) -> None:
    vault = prepare(tmp_path, DRILL)
    token = vault.root_token_file.read_text().strip()
    assert len(token) >= 32
    assert vault.root_token_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in vault.programs] == ["openbao", "vault-agent"]
    for program in vault.programs:
        assert token not in " ".join(program.command)
        assert token not in json.dumps(program.env)
    hello = vault.service_env["hello"]
    assert hello["FIREDRILL_TLS_CERT_FILE"].endswith("secrets/hello/cert.pem")
    assert vault.service_env["auth"]["FIREDRILL_JWT_KEY_FILE"].endswith("secrets/auth/jwt-keys.json")
    assert vault.service_env["response"]["FIREDRILL_ADMIN_TOKEN_FILE"].endswith("secrets/response/admin-token")
    assert prepare(tmp_path, DRILL).root_token_file.read_text().strip() == token  # stable across `up`s


# -- the Nomad JWKS URL Vault fetches (its own setting, not NOMAD_ADDR) -----------------------------


def test_the_jwks_url_defaults_to_the_nomad_server_beside_vault_not_nomad_addr() -> None:
    cluster = {"NOMAD_ADDR": "https://203.0.113.7:4646"}
    url, source = nomad_jwks_url(None, cluster)
    assert url == DEFAULT_NOMAD_JWKS_URL == "https://127.0.0.1:4646/.well-known/jwks.json"
    assert "203.0.113.7" not in url
    assert "beside Vault" in source
    # A dev agent without TLS (make dev-cluster): its plain-HTTP port on loopback.
    assert nomad_jwks_url(None, {"NOMAD_ADDR": "http://127.0.0.1:4646"})[0] == (
        "http://127.0.0.1:4646/.well-known/jwks.json"
    )


def test_the_jwks_url_setting_wins_and_enables_the_backend_without_nomad_addr() -> None:
    configured = "https://nomad.internal:4646/.well-known/jwks.json"
    assert nomad_jwks_url(None, {JWKS_URL_ENV: configured}) == (configured, JWKS_URL_ENV)
    assert nomad_jwks_url(None, {JWKS_URL_ENV: configured, "NOMAD_ADDR": "https://x:4646"})[0] == configured
    flag = "https://10.42.0.10:4646/.well-known/jwks.json"
    assert nomad_jwks_url(flag, {JWKS_URL_ENV: configured}) == (flag, "--nomad-jwks-url")
    assert nomad_jwks_url(None, {})[0] is None
    assert nomad_jwks_url(None, {JWKS_URL_ENV: "  "})[0] is None


def test_without_a_jwks_url_the_jwt_backend_is_skipped_with_a_message() -> None:
    vault = MagicMock()
    report = Report(emit=lambda _: None)
    Bootstrap(vault, DRILL, report).nomad_jwt(None, None)
    assert report.changes == []
    assert any("skipping the JWT auth method" in note and JWKS_URL_ENV in note for note in report.notes)
    vault.sys.enable_auth_method.assert_not_called()


def test_a_jwks_url_vault_cannot_fetch_is_explained() -> None:
    vault = MagicMock()
    vault.sys.list_auth_methods.return_value = {"data": {"jwt-nomad/": {"type": "jwt"}}}
    vault.read.side_effect = hvac_errors.InvalidPath()
    vault.write_data.side_effect = hvac_errors.InvalidRequest("error checking jwks URL")
    url = "https://127.0.0.1:4646/.well-known/jwks.json"
    with pytest.raises(VaultToolError) as caught:
        Bootstrap(vault, DRILL, Report(emit=lambda _: None)).nomad_jwt(url, "-----BEGIN CERTIFICATE-----")
    message = str(caught.value)
    assert url in message
    assert "error checking jwks URL" in message
    assert "NOMAD_CACERT" in message
    assert JWKS_URL_ENV in message
    written = vault.write_data.call_args
    assert written.args[0] == "auth/jwt-nomad/config"
    assert written.kwargs["data"]["jwks_url"] == url
    assert written.kwargs["data"]["jwks_ca_pem"] == "-----BEGIN CERTIFICATE-----"


def test_a_service_asks_for_the_name_its_clients_pin_and_only_the_secrets_it_reads(tmp_path: Path) -> None:
    hello = requests_for("hello")
    assert hello.pki is not None
    assert hello.pki.data(900) == {
        "common_name": "hello.service.consul",
        "alt_names": "localhost",
        "ip_sans": "127.0.0.1",
        "ttl": "900s",
    }
    assert hello.kv == (admin_token_request("hello"),)  # each service its own admin token, nothing else
    assert requests_for("metadata").kv == (JWT_PUBLIC, admin_token_request("metadata"))
    assert requests_for("auth").kv == (JWT_KEYS, admin_token_request("auth"))
    assert requests_for("response").kv == (ADMIN_TOKEN,)
    operator = requests_for("operator").pki
    assert operator is not None
    assert operator.data(60) == {"common_name": "operator", "alt_names": "operator.service.consul", "ttl": "60s"}
    assert "FIREDRILL_JWT_PUBLIC_KEYS_FILE" not in service_env(tmp_path, "hello")
    assert service_env(tmp_path, "rating")["FIREDRILL_JWT_PUBLIC_KEYS_FILE"].endswith("secrets/rating/jwt-public.json")
    with pytest.raises(KeyError):
        requests_for("grafana")


def test_rotation_targets_the_local_openbao_without_vault_addr(tmp_path: Path) -> None:
    from scripts.vault.local import openbao_addr, root_token_file
    from scripts.vault.rotate_jwt_key import vault_target

    local = {"FIREDRILL_STATE_DIR": str(tmp_path)}
    with pytest.raises(VaultToolError, match="make up"):
        vault_target(None, local)
    token_file = root_token_file(tmp_path)
    token_file.parent.mkdir()
    token_file.write_text("local-root\n")
    assert vault_target(None, local) == (openbao_addr(), "local-root")
    cluster = {**local, "VAULT_ADDR": "https://vault.example:8200/", "VAULT_TOKEN": "cluster-token"}
    assert vault_target(None, cluster) == ("https://vault.example:8200", "cluster-token")
