"""The period report for auditors: counts through the query layer, an evidence pack beside it,
rendered as self-contained HTML and printed to PDF. ``build_report`` does it all; ``gather``,
``verification``, ``render``, ``charts`` and ``pdf`` are its parts."""

from .build import PACK_DIR, BuiltReport, build_report
from .gather import gather_report
from .model import ReportData
from .pdf import find_browser, print_pdf
from .render import render_html
from .verification import CheckpointSource, checkpoint_from_pack, verify_section

__all__ = [
    "PACK_DIR",
    "BuiltReport",
    "CheckpointSource",
    "ReportData",
    "build_report",
    "checkpoint_from_pack",
    "find_browser",
    "gather_report",
    "print_pdf",
    "render_html",
    "verify_section",
]
