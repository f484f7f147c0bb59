"""Building the active policy: a bundle loaded from disk and the engine that evaluates it."""

from __future__ import annotations

from pathlib import Path

from policy.bundle import Bundle, GitInfo, load_bundle
from policy.decision import ActivePolicy
from policy.engine import OPA_TIMEOUT, Engine, EngineConfigError, EngineName, RegorusEngine


def make_engine(
    bundle: Bundle,
    *,
    name: EngineName = "regorus",
    opa_url: str | None = None,
    timeout: float = OPA_TIMEOUT,
    replace: bool = False,
) -> Engine:
    """The engine ``name`` for ``bundle``: embedded regorus, or the OPA server at ``opa_url``,
    which gets the bundle pushed now. ``timeout`` bounds each decision's connect and read;
    ``replace`` lets the bundle take over an OPA holding another Clearance revision."""
    if name == "regorus":
        return RegorusEngine(bundle)
    if name == "opa":
        if not opa_url:
            raise EngineConfigError(
                "CLEARANCE_ENGINE=opa needs CLEARANCE_OPA_URL, the OPA server's http(s)://host:port"
            )
        from policy.opa import OpaEngine  # imported on use: opa-python-client loads aiohttp (~0.1 s)

        return OpaEngine(bundle, url=opa_url, timeout=timeout, replace=replace)
    raise EngineConfigError(f"unknown engine {name!r}: CLEARANCE_ENGINE is regorus (default) or opa")


def load_policy(
    root: Path | str,
    *,
    engine: EngineName = "regorus",
    opa_url: str | None = None,
    opa_timeout: float = OPA_TIMEOUT,
    opa_replace: bool = False,
    git: GitInfo | None = None,
) -> ActivePolicy:
    """Load and validate a bundle, and compile it (regorus) or install it in OPA (``opa``).

    ``git``: where the files came from, recorded with every decision; the caller finds it
    (``policy.review.gitinfo.git_info``) so that loading a bundle never runs a subprocess.
    Raises ``BundleError``, ``EngineConfigError`` or ``policy.opa.OpaError`` with a message that
    says what to do.
    """
    bundle = load_bundle(root, git=git)
    chosen = make_engine(bundle, name=engine, opa_url=opa_url, timeout=opa_timeout, replace=opa_replace)
    return ActivePolicy(bundle=bundle, engine=chosen)
