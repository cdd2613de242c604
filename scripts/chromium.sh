#!/usr/bin/env bash
# chromium.sh — the headless browser the console's browser test drives.
#
#   scripts/chromium.sh install   install Debian's chromium if missing
#   scripts/chromium.sh env       export lines for: eval "$(scripts/chromium.sh env)"
#
# Needs root and Debian (apt). Idempotent.
set -euo pipefail

find_chromium() {
	command -v chromium || command -v chromium-browser || true
}

case "${1:-}" in
install)
	if [ -z "$(find_chromium)" ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
	fi
	"$(find_chromium)" --version
	;;
env)
	bin=$(find_chromium)
	if [ -n "$bin" ]; then
		echo "export WAIL_CHROMIUM=$bin"
	fi
	;;
*)
	echo "usage: $0 install|env" >&2
	exit 2
	;;
esac
