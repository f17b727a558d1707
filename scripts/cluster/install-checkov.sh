#!/usr/bin/env bash
# Create .venv-checkov with checkov when it is missing.
#
# checkov lives in its own virtualenv because it bundles an HCL parser that installs a package
# named `hcl2`, which would shadow python-hcl2 in the project's .venv.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; fi
cd "$(dirname "$0")/../.."

VENV_DIR="${CHECKOV_VENV:-.venv-checkov}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.2.}"

if [[ -x "$VENV_DIR/bin/checkov" ]]; then
    "$VENV_DIR/bin/checkov" --version
    exit 0
fi

echo "[checkov] creating $VENV_DIR (checkov ${CHECKOV_VERSION}*)" >&2
python3 -m venv "$VENV_DIR"
"$VENV_DIR/bin/python" -m pip install --quiet --upgrade pip
"$VENV_DIR/bin/python" -m pip install --quiet "checkov==${CHECKOV_VERSION}*"
"$VENV_DIR/bin/checkov" --version
