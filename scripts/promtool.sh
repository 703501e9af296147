#!/usr/bin/env bash
# Make sure Prometheus' promtool is on PATH, for the test that loads the alert rules in it.
# Debian ships it in the `prometheus` package, whose install would also set up a server we don't
# want: take the package file and extract only promtool into /usr/local/bin (as root).
# Usage: scripts/promtool.sh
set -euo pipefail

if command -v promtool >/dev/null; then
  echo "promtool: $(promtool --version 2>&1 | head -n 1)" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "promtool: missing; install Prometheus' promtool (Debian package prometheus) or run as root" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "promtool: fetching Debian's prometheus package for promtool" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
(cd "$work" && apt-get download -qq prometheus >/dev/null)
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
install -m 0755 "$work/x/usr/bin/promtool" /usr/local/bin/promtool
echo "promtool: $(promtool --version 2>&1 | head -n 1)" >&2
