"""``GET /v1/audit/report``: a period's compliance report (audit/report/) for an auditor key.

``format=html`` answers the self-contained HTML page; ``format=zip`` a zip of report.html,
report.json, the evidence pack (evidence/) and report.pdf when the server has headless Chromium.
The report is built in a temporary directory on the auditor's threads and removed once sent.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from starlette.background import BackgroundTask

from api.deps import Auditor, ServicesDep
from api.errors import ApiError
from api.filters import Rfc3339
from api.schemas import FORBIDDEN, UNAUTHORIZED, error_examples
from audit.errors import ExportError
from audit.report import build_report, find_browser

router = APIRouter(tags=["audit"])


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: Rfc3339 = Field(alias="from", description="start of the period (RFC 3339, inclusive)")
    to: Rfc3339 = Field(description="end of the period (RFC 3339, exclusive)")
    format: Literal["html", "zip"] = Field(
        "html", description="html: the page; zip: page, PDF (if the server has Chromium), data and evidence pack")

    @field_validator("to")
    @classmethod
    def _after_from(cls, value: object, info: ValidationInfo) -> object:
        start = info.data.get("from_")
        if start is not None and value is not None and value <= start:  # type: ignore[operator]
            raise ValueError("to must be after from")
        return value


def _zip(directory: Path, target: Path) -> None:
    # Stored, not deflated: the pack's JSONL dominates and a report should not wait on zlib.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())


@router.get(
    "/v1/audit/report",
    responses={
        200: {"content": {"text/html": {}, "application/zip": {}},
              "description": "the report page, or a zip of the page, its PDF, data and evidence pack"},
        **error_examples(UNAUTHORIZED, FORBIDDEN,
                         (422, "invalid_request", "from/to missing, not RFC 3339, or to not after from"),
                         (503, "report_unavailable", "the PDF could not be printed or the pack not written"),
                         (503, "audit_unavailable", "the audit database cannot be read")),
    },
    summary="A period's compliance report: charts, revisions, reloads, flags and its verified "
            "evidence pack (auditor)",
)
async def report(services: ServicesDep, _: Auditor, query: Annotated[ReportQuery, Query()]) -> Response:
    work = Path(tempfile.mkdtemp(prefix="clearance-report-"))
    try:
        pdf = query.format == "zip" and find_browser() is not None
        built = await services.auditor_work.run(
            build_report, services.audit_reads, work / "report", start=query.from_, end=query.to, pdf=pdf,
            trusted=services.trusted_verifiers())
        name = f"clearance-report-{query.from_:%Y%m%d}-{query.to:%Y%m%d}"
        if query.format == "html":
            page = built.html.read_text(encoding="utf-8")
            shutil.rmtree(work, ignore_errors=True)
            return HTMLResponse(page, headers={"Cache-Control": "no-store",
                                               "Content-Disposition": f'inline; filename="{name}.html"'})
        archive = work / f"{name}.zip"
        await services.auditor_work.run(_zip, work / "report", archive)
    except ExportError as exc:  # the PDF could not be printed, the pack not written
        shutil.rmtree(work, ignore_errors=True)
        raise ApiError(503, "report_unavailable", f"the report could not be built: {exc}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(archive, media_type="application/zip", filename=archive.name,
                        headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))
