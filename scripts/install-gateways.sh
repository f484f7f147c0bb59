#!/usr/bin/env bash
# The real gateways the gateway tests run against (tests/gateways), from the registries:
# - the LiteLLM proxy, into .venv-litellm, every package pinned with its hashes
#   (pip install --require-hashes -r tests/gateways/requirements-litellm.txt); the tests run it
#   with this checkout's client/ on PYTHONPATH (the Clearance guardrail class lives there);
# - the Portkey gateway under Node.js, into tests/gateways/portkey/node_modules, from the
#   committed lockfile (npm ci: integrity checked) with --ignore-scripts.
# Both are outside the tracked files (.gitignore). Idempotent: a stamp of the pinned files skips
# a second install. A missing Node.js/npm is reported, not fatal: the Portkey tests then skip
# saying so. PYTHON picks the interpreter of .venv-litellm (as for scripts/test).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REQUIREMENTS=tests/gateways/requirements-litellm.txt
stamp() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

want=$(stamp "$REQUIREMENTS")
if [ "$(cat .venv-litellm/.clearance-stamp 2>/dev/null)" != "$want" ]; then
    rm -rf .venv-litellm
    "$PYTHON" -m venv .venv-litellm
    .venv-litellm/bin/python -m pip install --quiet --upgrade pip
    # (This machine's pip configuration warns about local indexes it lacks: noise, filtered.)
    .venv-litellm/bin/python -m pip install --quiet --require-hashes --no-deps -r "$REQUIREMENTS" 2>&1 \
        | { grep -v "^WARNING: Location 'file://" || true; }
    test -x .venv-litellm/bin/litellm
    echo "$want" > .venv-litellm/.clearance-stamp
fi

PORTKEY=tests/gateways/portkey
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    want=$(stamp "$PORTKEY/package.json" "$PORTKEY/package-lock.json")
    if [ "$(cat "$PORTKEY/node_modules/.clearance-stamp" 2>/dev/null)" != "$want" ]; then
        (cd "$PORTKEY" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$want" > "$PORTKEY/node_modules/.clearance-stamp"
    fi
else
    echo "install-gateways: no node/npm: the Portkey gateway tests will be skipped" >&2
fi
