"""``/docs``: Swagger UI over ``/openapi.json``, served from this process alone.

The Swagger UI files come from the ``swagger-ui-bundle-v2`` package (the upstream release,
bundled for Python), the page and its start-up script from ``api/ui``; all under the same
Content-Security-Policy as ``/ui``: nothing is fetched from another host, no inline code runs.
FastAPI's own ``/docs`` and ``/redoc`` (which load their files from a public CDN) are off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from swagger_ui_bundle import swagger_ui_path

from api.errors import ApiError
from api.routers.ui import HEADERS, UI_DIR

router = APIRouter(include_in_schema=False)

VENDOR = Path(str(swagger_ui_path))
# A fixed list: nothing else of the package, or of api/, is ever served.
FILES = {
    "swagger-ui-bundle.js": (VENDOR, "text/javascript"),
    "swagger-ui.css": (VENDOR, "text/css"),
    "favicon-32x32.png": (VENDOR, "image/png"),
    "docs.js": (UI_DIR, "text/javascript"),
}
# The release files change only with the package: a browser may keep them an hour.
CACHED = {**HEADERS, "Cache-Control": "public, max-age=3600"}


@router.get("/docs")
def docs_page() -> FileResponse:
    return FileResponse(UI_DIR / "docs.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/docs/static/{name}")
def docs_static(name: str) -> FileResponse:
    if name not in FILES:
        raise ApiError(404, "not_found", f"no file {name!r} in the API documentation page")
    folder, media = FILES[name]
    return FileResponse(folder / name, media_type=media, headers=HEADERS if folder == UI_DIR else CACHED)
