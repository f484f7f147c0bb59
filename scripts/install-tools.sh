#!/usr/bin/env bash
# Debian packages the test suite uses beyond Python: Chromium for the web page's end-to-end tests
# (scripts/install-browser.sh) and wrk for the benchmark smoke test. Idempotent; needs root or sudo.
set -euo pipefail
cd "$(dirname "$0")"
./install-browser.sh
if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
