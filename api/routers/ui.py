"""``/ui``: the compliance officer's web page — static files over the auditor API.

No server-side session: the page asks for an auditor key, keeps it in the tab's
``sessionStorage`` and sends it as a Bearer token to ``/v1/audit/*`` like any other client, so
the page has exactly the rights of the key and nothing more. A strict Content-Security-Policy
allows only this origin's script and style (no inline code, no third-party hosts).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from api.errors import ApiError

router = APIRouter(include_in_schema=False)

UI_DIR = Path(__file__).resolve().parents[1] / "ui"
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/ui")
def page() -> FileResponse:
    return FileResponse(UI_DIR / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/ui/")
def page_slash() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui/static/{name}")
def static(name: str) -> FileResponse:
    if name not in STATIC:  # a fixed list: nothing else under api/ is ever served
        raise ApiError(404, "not_found", f"no file {name!r} in the web page")
    return FileResponse(UI_DIR / name, media_type=STATIC[name], headers=HEADERS)
