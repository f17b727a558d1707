#!/usr/bin/env bash
# Installs what Firedrill needs and is missing: Debian packages (Prometheus, Alertmanager,
# promtool/amtool, wrk, shellcheck, Go to build the consul-template renderer the template
# tests use, and Chromium to render and check the drill report headless), the Python virtualenv
# with the project and its tools, and checkov in its own virtualenv (.venv-checkov, or
# CHECKOV_VENV) for the Terraform scan of `make validate`.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; fi

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${FIREDRILL_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_apt=()
for pair in prometheus:prometheus promtool:prometheus prometheus-alertmanager:prometheus-alertmanager \
            amtool:prometheus-alertmanager wrk:wrk shellcheck:shellcheck go:golang-go chromium:chromium; do
  bin=${pair%%:*}; pkg=${pair##*:}
  if ! command -v "$bin" >/dev/null 2>&1; then
    case " ${need_apt[*]-} " in *" $pkg "*) ;; *) need_apt+=("$pkg") ;; esac
  fi
done
if ((${#need_apt[@]})); then
  say "installing Debian packages: ${need_apt[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
      say "not root and no sudo: install ${need_apt[*]} yourself, then run again"; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages enable system services; Firedrill runs its own instances.
  for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    "${sudo_cmd[@]}" pkill -x "$svc" >/dev/null 2>&1 || true
  done
else
  say "Debian packages present"
fi

stamp="$venv/.firedrill-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  say "creating virtualenv $venv and installing the project (first run takes a minute)"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # pip -q still warns about this machine's unused local index folders: keep real errors only.
  "$venv/bin/pip" install -q --upgrade pip >/dev/null 2> >(grep -v '^WARNING: Location' >&2)
  "$venv/bin/pip" install -q -e "${root}[dev]" 2> >(grep -v -e '^WARNING: Location' -e 'BuildBackendWarning' >&2)
  touch "$stamp"
else
  say "virtualenv up to date"
fi

# checkov has its own virtualenv (scripts/cluster/install-checkov.sh says why). Tests never install
# anything: without it the checkov test skips and says so.
checkov_venv="${CHECKOV_VENV:-$root/.venv-checkov}"
if [ -x "$checkov_venv/bin/checkov" ]; then
  say "checkov present"
else
  say "installing checkov into $checkov_venv (its own virtualenv; a few minutes the first time)"
  if ! CHECKOV_VENV="$checkov_venv" bash "$root/scripts/cluster/install-checkov.sh" >/dev/null \
       2> >(grep -v '^WARNING: Location' >&2); then
    say "checkov could not be installed: the checkov test of make validate skips until it is"
  fi
fi
