#!/usr/bin/env bash
# Install Debian's Chromium (and its driver) for the web page's end-to-end tests (tests/ui).
# Idempotent: does nothing when /usr/bin/chromium exists. Playwright drives this browser through
# executable_path; never run `playwright install` (it downloads a browser build, which fails here).
# DPkg::Lock::Timeout: two suites started together on a fresh machine wait for each other's install.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install-browser: not root and no sudo; install chromium by hand" >&2; exit 1
    fi
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
