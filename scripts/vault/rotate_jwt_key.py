"""Make a new JWT signing key active; earlier keys keep validating until their tokens expire.

    python -m scripts.vault.rotate_jwt_key                                    # the local platform
    VAULT_ADDR=… VAULT_TOKEN_FILE=… python -m scripts.vault.rotate_jwt_key   # a cluster's Vault

Without VAULT_ADDR (or BAO_ADDR) it targets the local platform's OpenBao, with the root token
file `make up` keeps in the state directory (FIREDRILL_STATE_DIR, default ``.firedrill``).

Reads ``secret/firedrill/auth/jwt``, rotates it (``scripts.vault.jwt_keys.rotate``), writes it
back with check-and-set (a concurrent rotation makes this one fail instead of losing a key),
and refreshes the public set at ``secret/firedrill/public/jwt``. The renderers (the local agent,
Nomad templates) write the new files; auth and the verifiers reload them without a restart.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hvac
from hvac import exceptions as hvac_errors

from scripts.vault import jwt_keys, local
from scripts.vault.vaultapi import (
    JWT_KEYS_PATH,
    JWT_PUBLIC_PATH,
    KV_MOUNT,
    VaultToolError,
    client,
    read_token,
    vault_addr,
)
from services.common.config import state_dir


def rotate_in_vault(vault: hvac.Client, *, max_token_lifetime_s: int | None = None) -> dict[str, Any]:
    """Rotate the key set in Vault; returns a summary (kids only, never key material)."""
    try:
        answer = vault.secrets.kv.v2.read_secret_version(
            JWT_KEYS_PATH, mount_point=KV_MOUNT, raise_on_deleted_version=True
        )
    except hvac_errors.InvalidPath:
        raise VaultToolError(f"no key set at {KV_MOUNT}/{JWT_KEYS_PATH}: run `make vault-bootstrap` first") from None
    current = answer["data"]["data"]
    version = int(answer["data"]["metadata"]["version"])
    rotated, dropped = jwt_keys.rotate(current, max_token_lifetime_s=max_token_lifetime_s)
    vault.secrets.kv.v2.create_or_update_secret(JWT_KEYS_PATH, secret=rotated, mount_point=KV_MOUNT, cas=version)
    vault.secrets.kv.v2.create_or_update_secret(
        JWT_PUBLIC_PATH, secret=jwt_keys.public_set(rotated), mount_point=KV_MOUNT
    )
    return {
        "previous_kid": current.get("active_kid"),
        "active_kid": rotated["active_kid"],
        "validating_kids": [k["kid"] for k in rotated["keys"]],
        "dropped_kids": dropped,
        "max_token_lifetime_s": rotated["max_token_lifetime_s"],
    }


def vault_target(token_file: Path | None, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """Vault's address and a token: VAULT_ADDR's when set, else the local platform's OpenBao."""
    if environ.get("VAULT_ADDR") or environ.get("BAO_ADDR"):
        return vault_addr(environ), read_token(token_file, environ)
    local_token = token_file or local.root_token_file(state_dir(environ))
    if not local_token.is_file():
        raise VaultToolError(
            f"VAULT_ADDR is not set and there is no local OpenBao token at {local_token}: start the local "
            "platform (`make up`), or set VAULT_ADDR and VAULT_TOKEN / VAULT_TOKEN_FILE for a cluster"
        )
    return local.openbao_addr(), read_token(local_token, environ)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.vault.rotate_jwt_key",
        description="Make a new JWT signing key active in Vault; previous keys keep validating for the "
        "maximum token lifetime. VAULT_ADDR and VAULT_TOKEN / VAULT_TOKEN_FILE as for the bootstrap; "
        "without VAULT_ADDR, the local platform's OpenBao (FIREDRILL_STATE_DIR, default .firedrill).",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file holding the Vault token (default: VAULT_TOKEN_FILE; locally the root token file of `make up`)",
    )
    parser.add_argument(
        "--max-token-lifetime-s",
        type=int,
        help="how long a retired key keeps validating (default: the value stored with the key set)",
    )
    args = parser.parse_args(argv)
    if args.max_token_lifetime_s is not None and not 30 <= args.max_token_lifetime_s <= 7 * 86400:
        parser.error("--max-token-lifetime-s must be between 30 and 604800")
    try:
        vault = client(*vault_target(args.token_file))
        summary = rotate_in_vault(vault, max_token_lifetime_s=args.max_token_lifetime_s)
    except VaultToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except hvac_errors.InvalidRequest as exc:
        print(f"error: the key set changed meanwhile (check-and-set failed); run again: {exc}", file=sys.stderr)
        return 1
    except hvac_errors.VaultError as exc:
        print(f"error: Vault refused: {exc.__class__.__name__}", file=sys.stderr)
        return 1
    print(f"active JWT key: {summary['active_kid']} (was {summary['previous_kid']})")
    print(f"still validating: {', '.join(summary['validating_kids'])}")
    if summary["dropped_kids"]:
        print(f"dropped (older than {summary['max_token_lifetime_s']}s): {', '.join(summary['dropped_kids'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
