"""The period report as one self-contained HTML file (Jinja2, autoescaped; inline CSS and SVG)."""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import Environment, PackageLoader, select_autoescape

from .charts import stacked_days, timeline
from .model import ReportData

__all__ = ["render_html"]

_ENV = Environment(loader=PackageLoader("audit.report", "templates"),
                   autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["sum_values"] = lambda counts: sum(counts.values()) if isinstance(counts, Mapping) else 0


def render_html(report: ReportData) -> str:
    return _ENV.get_template("report.html.j2").render(
        r=report,
        chart_outcomes=stacked_days(report.days_by_outcome, title="decisions per day by outcome"),
        chart_provenance=stacked_days(report.days_by_provenance,
                                      title="decisions per day by provenance of the cleared models"),
        chart_timeline=timeline(report.revisions, start=report.shown_from or report.period_from,
                                end=report.shown_to or report.period_to),
    )
