#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Debian's Chromium for the browser
# tests (Playwright drives /usr/bin/chromium; `playwright install` cannot download here).
# Idempotent and quiet when everything is present.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
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
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
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
