"""Inline SVG charts for the period report: stacked bars per day and the revisions' timeline.

Plain SVG text (no script, no external asset) so the HTML opens offline and prints to PDF as
drawn. Text is escaped with markupsafe (Jinja2's escaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from markupsafe import Markup, escape

from ..canonical import parse_time
from .model import DayCounts, RevisionSpan

__all__ = ["PALETTE", "stacked_days", "timeline"]

# Colour-blind-safe (Okabe–Ito), fixed per series name so the same outcome is the same colour.
PALETTE = {
    "allow": "#009E73", "deny": "#D55E00",
    "open_western": "#0072B2", "open_chinese": "#E69F00", "gated_proprietary": "#CC79A7",
    "(none cleared)": "#999999",
}
EXTRA = ("#56B4E9", "#F0E442", "#000000", "#882255", "#117733")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 200, 44, 28, 8


def _colour(name: str, names: Sequence[str]) -> str:
    return PALETTE.get(name) or EXTRA[list(names).index(name) % len(EXTRA)]


def stacked_days(days: Sequence[DayCounts], *, title: str) -> Markup:
    """Bars per UTC day, stacked by series, with a legend and the y axis's maximum."""
    names = sorted({name for day in days for name in day.counts})
    peak = max((sum(day.counts.values()) for day in days), default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 0.5)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 22}" '
             f'role="img" aria-label="{escape(title)}" class="chart">',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#444"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" font-size="10">{peak}</text>',
             f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="10">0</text>']
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = LEFT + i * step + (step - bar) / 2
        y = TOP + plot_h
        for name in names:
            count = day.counts.get(name, 0)
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{_colour(name, names)}"><title>{escape(day.day[:10])} '
                         f'{escape(name)}: {count}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{LEFT + i * step + step / 2:.1f}" y="{TOP + plot_h + 14}" '
                         f'text-anchor="middle" font-size="10">{escape(day.day[5:10])}</text>')
    x = LEFT
    for name in names:
        parts.append(f'<rect x="{x}" y="{HEIGHT + 6}" width="10" height="10" fill="{_colour(name, names)}"/>'
                     f'<text x="{x + 14}" y="{HEIGHT + 15}" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(revisions: Sequence[RevisionSpan], *, start: str, end: str) -> Markup:
    """One row per policy revision: a bar from its first to its last entry in the period."""
    if not revisions:
        return Markup("")
    t0, t1 = parse_time(start).timestamp(), parse_time(end).timestamp()
    span = max(t1 - t0, 1.0)
    row, label_w = 22, 170
    plot_w = WIDTH - label_w - 8
    height = row * len(revisions) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="policy revisions over the period" class="chart">']
    for i, rev in enumerate(revisions):
        a = (parse_time(rev.first_at).timestamp() - t0) / span
        b = (parse_time(rev.last_at).timestamp() - t0) / span
        x, w = label_w + a * plot_w, max((b - a) * plot_w, 2.0)
        y = i * row + 4
        short = rev.revision.removeprefix("sha256:")[:12]
        parts.append(f'<text x="0" y="{y + 12}" font-size="11" font-family="monospace">{escape(short)}</text>'
                     f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="14" fill="{EXTRA[i % len(EXTRA)]}">'
                     f'<title>{escape(rev.revision)}: {escape(rev.first_at)} to {escape(rev.last_at)}</title></rect>')
    base = row * len(revisions) + 16
    parts.append(f'<text x="{label_w}" y="{base}" font-size="10">{escape(_day(start))}</text>'
                 f'<text x="{WIDTH - 8}" y="{base}" font-size="10" text-anchor="end">{escape(_day(end))}</text>'
                 "</svg>")
    return Markup("".join(parts))


def _day(moment: str) -> str:
    return parse_time(moment).strftime("%Y-%m-%d %H:%M")
