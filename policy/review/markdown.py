"""An impact report as Markdown, fit for a pull-request comment (GitHub-flavoured).

Rendered from ``ImpactReport.to_dict()``, so the Markdown and the JSON say the same thing.
Tables are cut at ``ROWS`` rows (a comment has a size limit); the JSON has every row.
"""

from __future__ import annotations

from typing import Any

ROWS = 25
_MAX_ROUTES_PER_EXAMPLE = 4


def render_markdown(report: dict[str, Any]) -> str:
    base, head, timing = report["base"], report["head"], report["timing"]
    out = [f"## Policy impact: {_side(base)} → {_side(head)}", ""]
    out += [_verdict(report), ""]
    out += [
        "| | |",
        "|---|---|",
        f"| Decisions replayed | {report['replayed']:,} ({report['distinct_workloads']:,} distinct workloads) "
        f"from {_cell(report['inputs'])} |",
        *([f"| Base answers from the trail | {report['base_from_trail']:,} (recorded under the base revision, "
           "not decided again) |"] if report["base_from_trail"] else []),
        f"| Outcomes flipped | allow→deny **{report['flipped']['allow->deny']:,}** (breaking) · "
        f"deny→allow {report['flipped']['deny->allow']:,} |",
        f"| Decisions with any change | {report['changed']:,} |",
        f"| Revisions | `{_short(base['revision'])}` → `{_short(head['revision'])}` |",
        f"| apps.yaml | {'changed: entitlements re-derived from each side' if report['apps_yaml_changed'] else 'unchanged'} |",
        f"| Took | {timing['seconds']:.2f} s ({timing['replays_per_second']:,.0f} replays/s, "
        f"{timing['workers']} process{'es' if timing['workers'] != 1 else ''}; bundles built in "
        f"{timing['build_seconds']:.2f} s) |",
    ]
    if report["skipped"]:
        out.append(f"| Skipped inputs | {report['skipped']:,} (see below) |")
    out.append("")
    out += _routes("Routes newly denied", report["newly_denied"], "Now denied by")
    out += _routes("Routes newly cleared", report["newly_cleared"], None)
    out += _codes(report["codes_appeared"], report["codes_disappeared"])
    out += _obligations(report["obligations_appeared"], report["obligations_disappeared"])
    out += _errors(report)
    out += _examples(report["examples"])
    out += ["<details><summary>How this was computed</summary>", "",
            f"- {report['semantics']}",
            f"- Base: `{base['ref']}` at `{base['directory']}`; head: `{head['ref']}` at `{head['directory']}`.",
            "- A route absent from one side (model or deployment added or removed) counts as not cleared there.",
            "- `allow→deny` is breaking: the app would have no route left for that workload."]
    out += [f"- Skipped: {_cell(s)}" for s in report["skipped_examples"]]
    out += ["", "</details>", ""]
    return "\n".join(out)


def _side(side: dict[str, Any]) -> str:
    commit = f" ({side['commit'][:10]}{', dirty' if side.get('dirty') else ''})" if side.get("commit") else ""
    return f"`{side['ref']}`{commit}"


def _short(revision: str) -> str:
    return revision[:19] + "…" if len(revision) > 20 else revision


def _verdict(report: dict[str, Any]) -> str:
    breaking = report["flipped"]["allow->deny"]
    if breaking:
        return (f"> :no_entry: **Breaking: {breaking:,} decision{'s' if breaking != 1 else ''} would go from "
                f"allow to deny** (the app would have no cleared route left).")
    if report["changed"]:
        return f"> :warning: No decision goes from allow to deny, but {report['changed']:,} would change."
    if report["replayed"] == 0:
        return "> :grey_question: No decisions were replayed: nothing is known about the impact."
    return "> :white_check_mark: No replayed decision would change."


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _routes(title: str, rows: list[dict[str, Any]], reasons_header: str | None) -> list[str]:
    if not rows:
        return []
    header = "| App | Model | Deployments | Decisions |" + (f" {reasons_header} |" if reasons_header else "")
    rule = "|---|---|---|---:|" + ("---|" if reasons_header else "")
    out = [f"### {title}", "", header, rule]
    for row in rows[:ROWS]:
        line = f"| {row['app_id']} | {row['model']} | {', '.join(row['deployments'])} | {row['decisions']:,} |"
        if reasons_header:
            line += f" {', '.join(row['reasons']) or '(route removed)'} |"
        out.append(line)
    if len(rows) > ROWS:
        out.append(f"\n… and {len(rows) - ROWS} more rows (see `--format json`).")
    return out + [""]


def _codes(appeared: list[dict[str, Any]], disappeared: list[dict[str, Any]]) -> list[str]:
    if not appeared and not disappeared:
        return []
    out = ["### Reason codes", "", "| Code | Change | Routes | Decisions |", "|---|---|---:|---:|"]
    out += [f"| {r['code']} | appears | {r['routes']:,} | {r['decisions']:,} |" for r in appeared[:ROWS]]
    out += [f"| {r['code']} | disappears | {r['routes']:,} | {r['decisions']:,} |" for r in disappeared[:ROWS]]
    return out + [""]


def _obligations(gained: list[dict[str, Any]], lost: list[dict[str, Any]]) -> list[str]:
    if not gained and not lost:
        return []
    out = ["### Obligations on routes cleared on both sides", "", "| Obligation | Change | Routes | Decisions |",
           "|---|---|---:|---:|"]
    out += [f"| {_cell(r['obligation'])} | gained | {r['routes']:,} | {r['decisions']:,} |" for r in gained[:ROWS]]
    out += [f"| {_cell(r['obligation'])} | lost | {r['routes']:,} | {r['decisions']:,} |" for r in lost[:ROWS]]
    return out + [""]


def _errors(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for side in ("base", "head"):
        rows = report[f"{side}_errors"]
        if rows:
            out += [f"### Decisions the {side} cannot make", ""]
            out += [f"- {r['decisions']:,} × {_cell(r['error'])}" for r in rows]
            out.append("")
    return out


def _examples(examples: list[dict[str, Any]]) -> list[str]:
    if not examples:
        return []
    out = ["### Examples", ""]
    for n, ex in enumerate(examples, start=1):
        w = ex["workload"]
        if ex.get("workload_profile"):
            what = f"workload profile {ex['workload_profile']}"
        else:  # as the app sent it: what it left out came from its profile
            shown = [str(w[k]) for k in ("task", "quality_tier", "regulatory_tier", "sector") if w.get(k)]
            what = ", ".join(shown + [" ".join(w["jurisdictions"])] if w.get("jurisdictions") else shown)
        ident = f"`{ex['decision_id']}`" if ex["decision_id"] else f"`{ex['source']}`"
        flip = (f"**{ex['base_outcome']} → {ex['head_outcome']}**" + (" (breaking)" if ex["breaking"] else "")
                if ex["base_outcome"] != ex["head_outcome"] else f"{ex['base_outcome']} (unchanged)")
        out.append(f"{n}. {ident} — {ex['app_id']} ({what}): {flip}")
        diff = ex["diff"]
        for route in diff.get("newly_denied", [])[:_MAX_ROUTES_PER_EXAMPLE]:
            reasons = "; ".join(f"{r['code']}: {r['message']}" for r in route["reasons"]) or "route removed"
            out.append(f"   - newly denied {route['model']} / {route['deployment']}: {_cell(reasons)}")
        for route in diff.get("newly_cleared", [])[:_MAX_ROUTES_PER_EXAMPLE]:
            out.append(f"   - newly cleared {route['model']} / {route['deployment']}")
        more = sum(max(0, len(diff.get(k, [])) - _MAX_ROUTES_PER_EXAMPLE) for k in ("newly_denied", "newly_cleared"))
        if more > 0:
            out.append(f"   - … {more} more routes")
        if diff.get("codes_appeared") and not diff.get("newly_denied"):
            out.append(f"   - reasons gained: {', '.join(diff['codes_appeared'])}")
        if diff.get("codes_disappeared") and not diff.get("newly_cleared"):
            out.append(f"   - reasons lost: {', '.join(diff['codes_disappeared'])}")
        for key, verb in (("obligations_appeared", "gained"), ("obligations_disappeared", "lost")):
            if diff.get(key):
                out.append(f"   - obligations {verb}: {_cell(', '.join(diff[key]))}")
        for side in ("base_error", "head_error"):
            if diff.get(side):
                out.append(f"   - {side.replace('_', ' ')}: {_cell(diff[side])}")
    return out + [""]
