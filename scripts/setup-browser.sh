#!/usr/bin/env bash
# Installs Debian's chromium for the admin UI's end-to-end test
# (web/admin/e2e_test.go drives it headless with chromedp). Idempotent: it
# touches the network only when chromium is missing.
set -euo pipefail

say() { printf 'setup-browser: %s\n' "$*"; }
die() { printf 'setup-browser: error: %s\n' "$*" >&2; exit 1; }

for p in /usr/bin/chromium /usr/bin/chromium-browser; do
	if [ -x "$p" ]; then
		say "chromium: found $p"
		exit 0
	fi
done

[ "$(id -u)" -eq 0 ] || die "chromium not found; run this script as root (sudo $0) or install Debian's 'chromium' package"
command -v apt-get >/dev/null || die "chromium not found and apt-get is unavailable; install chromium by hand"
say "apt-get update"
apt-get update -qq
say "apt-get install chromium"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[ -x /usr/bin/chromium ] || die "installed chromium but /usr/bin/chromium is missing"
say "chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
