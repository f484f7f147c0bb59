"""API keys for a bench's server, made as ``clearance apikeys create`` makes them, in one process.

    python -m bench.api_keys ROLE[:APP] ...    # with the server's environment; one key per line

The CLI starts Python, imports the service and, for an app key, loads the policy bundle, once per
key: 1.2–1.7 s each on a fast machine, which was most of a short bench run's set-up (seven keys
for each ``http_bench.py`` run, eleven for ``key_flood.py``) and of the bench smoke tests' time.
This makes them with the CLI's own functions — ``api.apikeys.create_key``, each creation recorded
in the audit trail by ``api.key_admin.ApiKeyRecorder`` before the key commits — in one Python
start. What ``clearance apikeys create`` checks besides (the role's arguments, an app in
apps.yaml) is checked here too, by the same functions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def create_keys(env: dict[str, str], *specs: str) -> list[str]:
    """One key per ``ROLE`` or ``ROLE:APP`` in ``specs``, on the database ``env`` configures (a
    bench server's environment, ``http_bench.service_env``), in order."""
    done = subprocess.run([sys.executable, "-m", "bench.api_keys", *specs], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.api_keys failed ({done.returncode}):\n{done.stderr}")
    keys = done.stdout.split()
    if len(keys) != len(specs):
        raise RuntimeError(f"bench.api_keys printed {len(keys)} keys for {len(specs)} specs:\n{done.stderr}")
    return keys


def main(specs: list[str]) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from api.apikeys import Role, check_role, create_key
    from api.cli_common import database, ensure_signing_key
    from api.key_admin import ApiKeyRecorder
    from api.services import load_key
    from api.settings import Settings
    from audit._db import sqlalchemy_url
    from policy import load_bundle

    settings = Settings()
    parsed = [(Role(role), app or None) for role, _, app in (spec.partition(":") for spec in specs)]
    catalog = load_bundle(settings.policy_dir).catalog if any(app for _, app in parsed) else None
    for role, app in parsed:
        check_role(role, app, None, None)
        if app is not None and catalog is not None and catalog.app(app) is None:
            raise SystemExit(f"app {app!r} is not in apps.yaml")
    with database(settings, migrate=True) as url:
        ensure_signing_key(settings, url)
        recorder = ApiKeyRecorder(url, load_key(settings))
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            for role, app in parsed:
                key, _ = create_key(engine, role=role, app_id=app, record=recorder.created)
                print(key, flush=True)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
