#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Debian's Chromium for the browser
# tests (Playwright drives /usr/bin/chromium; `playwright install` cannot download here).
# Idempotent and quiet when everything is present.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# npm fetches axe-core for the accessibility scans of the browser tests (below).
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# PDF report tests render pages with pdftoppm and read their text with pdftotext.
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# Sisimai classifies bounces of every MTA layout (engine/engagement/sisimai_bridge.py).
perl -MSisimai -e 1 >/dev/null 2>&1 || need+=(libsisimai-perl)
if [ "${1:-}" = "--bench" ]; then
  command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
  # HTTP load generator of bench/tracking.py (open pixel and click redirect).
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi

# axe-core (tests/browser/test_studio_a11y.py) from the npm registry into var/vendor/axe:
# fetched at install time, never committed, never loaded from a CDN.
vendor_axe() {
  local target="$repo/var/vendor/axe"
  [ -f "$target/node_modules/axe-core/axe.min.js" ] && return 0
  command -v npm >/dev/null 2>&1 || return 0  # reported by the apt step above
  echo "Mengambil axe-core dari registri npm ke var/vendor/axe"
  mkdir -p "$target"
  npm install --prefix "$target" --no-save --no-audit --no-fund --silent axe-core@4 >/dev/null \
    || echo "axe-core tidak dapat diambil dari registri npm" >&2
}

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Paket sistem belum ada: ${need[*]}. Pasang dengan: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "Memasang paket sistem: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # postfix asks questions on install; answer them up front (no local mail system).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
vendor_axe
