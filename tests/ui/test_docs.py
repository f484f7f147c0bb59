"""``/docs`` in a real headless Chromium: Swagger UI renders every operation from files this
server serves, under the same Content-Security-Policy as ``/ui``; the browser asks no other
host for anything, and the page runs no inline code."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.routers.ui import HEADERS
from tests.ui.conftest import ARTIFACTS, Site

pytestmark = pytest.mark.slow  # a server and a browser


def test_the_page_names_no_other_host(site: Site) -> None:
    page = httpx.get(f"{site.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page.text)
    assert references and all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert "<script>" not in page.text.replace(" ", "")  # no inline script (the CSP would block it)
    for ref in references:
        asset = httpx.get(f"{site.url}{ref}")
        assert asset.status_code == 200 and asset.content, ref
        assert asset.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    # FastAPI's CDN-backed pages are gone, and nothing else of the package is served.
    assert httpx.get(f"{site.url}/redoc").status_code == 404
    assert httpx.get(f"{site.url}/docs/static/swagger-ui.js.map").status_code == 404
    assert httpx.get(f"{site.url}/docs/static/..%2F__init__.py").status_code == 404


def test_swagger_ui_renders_every_operation_offline(browser: Any, site: Site) -> None:
    context = browser.new_context()
    requested: list[str] = []
    outside: list[str] = []
    own = urlsplit(site.url).netloc

    def route(request_route: Any) -> None:
        url = request_route.request.url
        requested.append(url)
        if urlsplit(url).netloc != own and not url.startswith("data:"):
            outside.append(url)
            request_route.abort()  # as on a machine without internet
        else:
            request_route.continue_()

    context.route("**/*", route)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    tab.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    try:
        tab.goto(f"{site.url}/docs")
        tab.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        document = httpx.get(f"{site.url}/openapi.json").json()
        operations = sum(1 for item in document["paths"].values() for method in item
                         if method in ("get", "post", "put", "patch", "delete"))
        tab.wait_for_function(f"document.querySelectorAll('.swagger-ui .opblock').length === {operations}")
        assert tab.locator(".swagger-ui .info .title").inner_text().startswith("Clearance")
        # Open one operation: its parameters render (React state, styles, icons all work).
        tab.click("#operations-audit-audit_stats_v1_audit_stats_get .opblock-summary")
        tab.wait_for_selector("#operations-audit-audit_stats_v1_audit_stats_get tr[data-param-name='group_by']")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "docs.png"))
    finally:
        context.close()
    assert not outside, f"the page asked other hosts: {outside}"
    assert any(u.endswith("/docs/static/swagger-ui-bundle.js") for u in requested)
    assert not problems, problems  # CSP violations appear as console errors
