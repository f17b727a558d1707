"""Pure logic of the Vault tooling: key rotation windows, banner redaction, policies, idempotency compare."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.vault import jwt_keys
from scripts.vault.bootstrap import _differs, policy_text
from scripts.vault.devserver import REDACTED, redact
from scripts.vault.local import prepare
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
