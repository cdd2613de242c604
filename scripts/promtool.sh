#!/usr/bin/env bash
# promtool.sh — Prometheus's rule checker, for the test of the shipped
# alerting rules (deploy/prometheus; internal/server TestAlertRulesPromtool).
#
#   scripts/promtool.sh install   put Debian's promtool in the cache (unless one is on PATH)
#   scripts/promtool.sh env       export lines for: eval "$(scripts/promtool.sh env)"
#
# Only promtool is unpacked from Debian's prometheus package (apt-get
# download, no install: no server, no service). Needs Debian (apt);
# idempotent. WAIL_PROMTOOL_CACHE: where it is kept (default
# /var/cache/wail-promtool).
set -euo pipefail

cache=${WAIL_PROMTOOL_CACHE:-/var/cache/wail-promtool}

find_promtool() {
	if [ -x "$cache/promtool" ]; then
		echo "$cache/promtool"
	else
		command -v promtool || true
	fi
}

case "${1:-}" in
install)
	if [ -z "$(find_promtool)" ]; then
		mkdir -p "$cache"
		tmp=$(mktemp -d)
		chmod 755 "$tmp" # apt-get download runs as _apt
		trap 'rm -rf "$tmp"' EXIT
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq prometheus)
		dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
		install -m 0755 "$tmp/x/usr/bin/promtool" "$cache/promtool"
	fi
	"$(find_promtool)" --version 2>&1 | head -1
	;;
env)
	bin=$(find_promtool)
	if [ -n "$bin" ]; then
		echo "export WAIL_PROMTOOL=$bin"
	fi
	;;
*)
	echo "usage: $0 install|env" >&2
	exit 2
	;;
esac
