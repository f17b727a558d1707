#!/usr/bin/env bash
# A single-machine Nomad + Consul + Vault cluster in dev mode, bootstrapped and deployed.
#
# Needs the nomad, consul and vault binaries on PATH (and a Docker engine for the jobs). When any
# is missing it says which and exits 2: nothing is downloaded. Dev agents keep everything in
# memory, listen on loopback only, and stop with this script (Ctrl-C) or `kill` of the PIDs it
# prints. State and logs: ${FIREDRILL_DEV_CLUSTER_DIR:-.firedrill/dev-cluster}.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; fi
cd "$(dirname "$0")/../.."

missing=()
for bin in nomad consul vault; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if ((${#missing[@]})); then
    echo "dev-cluster: not on PATH: ${missing[*]}." >&2
    echo "Install the HashiCorp releases (https://releases.hashicorp.com) or use the local platform: make up" >&2
    exit 2
fi

python="${PYTHON:-.venv/bin/python}"
dir="${FIREDRILL_DEV_CLUSTER_DIR:-.firedrill/dev-cluster}"
mkdir -p "$dir"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

wait_until() { # wait_until <seconds> <what> <command...>
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "dev-cluster: ${what} not ready after ${seconds}s; see ${dir}/*.log" >&2
            exit 1
        fi
        sleep 1
    done
}

echo "[dev-cluster] consul agent -dev (log: ${dir}/consul.log)"
consul agent -dev -client=127.0.0.1 >"${dir}/consul.log" 2>&1 &
pids+=("$!")
export CONSUL_HTTP_ADDR=http://127.0.0.1:8500
wait_until 30 "consul" consul members

# A random root token for this dev Vault only; it lives in this process and the token file.
root_token=$("$python" -c 'import secrets; print(secrets.token_hex(16))')
token_file="${dir}/vault-root-token"
(umask 077 && printf '%s\n' "$root_token" >"$token_file")
echo "[dev-cluster] vault server -dev (log: ${dir}/vault.log, token file: ${token_file})"
VAULT_DEV_ROOT_TOKEN_ID="$root_token" vault server -dev -dev-listen-address=127.0.0.1:8200 >"${dir}/vault.log" 2>&1 &
pids+=("$!")
export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN_FILE="$token_file"
wait_until 30 "vault" vault status

echo "[dev-cluster] nomad agent -dev (log: ${dir}/nomad.log)"
cat >"${dir}/nomad.hcl" <<'HCL'
vault {
  enabled               = true
  address               = "http://127.0.0.1:8200"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
HCL
nomad agent -dev -bind=127.0.0.1 -config="${dir}/nomad.hcl" >"${dir}/nomad.log" 2>&1 &
pids+=("$!")
export NOMAD_ADDR=http://127.0.0.1:4646
wait_until 60 "nomad" nomad node status

echo "[dev-cluster] vault bootstrap"
"$python" -m scripts.vault.bootstrap

echo "[dev-cluster] monitoring config (generated files)"
"$python" -m scripts.monitoring render

echo "[dev-cluster] deploying every job"
"$python" -m scripts.cluster.deploy --profile drill --var datacenters='["dc1"]'

echo "[dev-cluster] ready: Nomad ${NOMAD_ADDR}, Consul ${CONSUL_HTTP_ADDR}, Vault ${VAULT_ADDR}"
echo "[dev-cluster] agents: ${pids[*]} (Ctrl-C stops them)"
wait
