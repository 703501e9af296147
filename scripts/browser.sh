#!/usr/bin/env bash
# Make sure Debian's Chromium and ChromeDriver are there for the dashboard's browser test:
# install them with apt-get when missing and running as root, fail with a clear message otherwise.
# Usage: scripts/browser.sh
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "browser: $(chromium --version 2>/dev/null | head -n 1), $(chromedriver --version | head -n 1)" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "browser: chromium and chromedriver are missing; install them (Debian: apt-get install chromium chromium-driver)" \
       "or run as root so this script can" >&2
  exit 1
fi
echo "browser: installing chromium chromium-driver" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
echo "browser: $(chromium --version 2>/dev/null | head -n 1), $(chromedriver --version | head -n 1)" >&2
