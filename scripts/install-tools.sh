#!/usr/bin/env bash
# Debian packages the test suite uses beyond Python: Chromium for the web page's end-to-end tests
# (scripts/install-browser.sh), wrk for the benchmark smoke test, and poppler-utils (pdftotext,
# pdftoppm) for the period report's PDF tests (tests/compliance/test_report.py). Idempotent; needs
# root or sudo.
set -euo pipefail
cd "$(dirname "$0")"
./install-browser.sh
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
