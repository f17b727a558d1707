#!/usr/bin/env bash
# Secret scan of every file git knows about (tracked, or new and not ignored), against the
# audited baseline .secrets.baseline. Fails (exit 1) on any finding the baseline does not hold
# as audited-not-a-secret. Refresh the baseline after auditing a false positive:
#   .venv/bin/detect-secrets scan --baseline .secrets.baseline && .venv/bin/detect-secrets audit .secrets.baseline
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; fi
cd "$(dirname "$0")/../.."
VENV="${VENV:-.venv}"
HOOK="$VENV/bin/detect-secrets-hook"
if [ ! -x "$HOOK" ]; then
  echo "detect-secrets is not installed in $VENV (run make setup)" >&2
  exit 2
fi
# The .schema/ files are schemas generated from HashiCorp sources: attribute names such as "token"
# and the pinned git commit ids, no values; scanning them only yields false positives.
mapfile -d '' FILES < <(git ls-files -z --cached --others --exclude-standard -- . ':!:.secrets.baseline' ':!:**/.schema/*.json')
EXISTING=()
for f in "${FILES[@]}"; do
  [ -f "$f" ] && EXISTING+=("$f")
done
if "$HOOK" --baseline .secrets.baseline "${EXISTING[@]}"; then
  echo "secret scan: ${#EXISTING[@]} files, 0 findings"
else
  echo "secret scan: findings above; remove the secret, or audit a false positive into .secrets.baseline" >&2
  exit 1
fi
# The hook may refresh line numbers in the baseline; a finding still marked unaudited fails too.
"$VENV/bin/python" - <<'PY'
import json, sys
results = json.load(open(".secrets.baseline"))["results"]
open_findings = [(f, r["line_number"]) for f, rs in results.items() for r in rs if r.get("is_secret") is not False]
if open_findings:
    print(f"secret scan: unaudited baseline entries: {open_findings}", file=sys.stderr)
    sys.exit(1)
PY
