"""The compliance officer's page in a real headless Chromium: sign in, search, open, verify."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.audit.helpers import superuser, triggers_disabled
from tests.ui.conftest import ARTIFACTS, PAST_ENTRIES, Site, sign_in

TOTAL = PAST_ENTRIES + 3
pytestmark = pytest.mark.slow  # a server and a browser: seconds, not milliseconds


def ROWS(page: Any) -> Any:  # noqa: N802 - reads like the constant it stands for
    return page.locator("#results-table tbody tr[data-seq]")


def _seqs(page: Any) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all("#results-table tbody tr[data-seq]",
                                                      "rows => rows.map(r => r.dataset.seq)")]


def test_sign_in_refuses_a_non_auditor_key_then_shows_the_trail(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/ui")
    assert page.is_visible("#signin") and not page.is_visible("#app")
    page.fill("#api-key", site.app_key)
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:not([hidden])")
    assert "not an auditor key" in page.inner_text("#signin-error")
    sign_in(page, site)
    assert _seqs(page) == list(range(TOTAL, TOTAL - min(TOTAL, 50), -1))
    assert page.evaluate("sessionStorage.getItem('clearance.auditorKey')") == site.auditor_key
    page.wait_for_selector("#chart-outcome svg rect[data-series]")
    assert page.locator("#chart-outcome rect[data-series='deny']").count() > 0
    assert page.locator("#chart-provenance rect[data-series='open_chinese']").count() > 0
    page.reload()  # the tab keeps the key for its session
    page.wait_for_selector("#results-table tbody tr[data-seq]")


def test_search_with_filters_and_paging(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.select_option("select[name=outcome]", "allow")
    page.select_option("select[name=provenance]", "open_chinese")
    page.select_option("select[name=limit]", "25")
    page.fill("input[name=to]", "2026-03-20T00:00:00")
    page.click("#search-button")
    expect(page.locator(f"#results-table tbody tr[data-seq='{TOTAL}']")).to_have_count(0)  # the search ran
    expect(ROWS(page).first).to_be_visible()
    outcomes = page.eval_on_selector_all("#results-table .pill", "p => p.map(x => x.textContent)")
    assert set(outcomes) == {"allow"}
    cleared = page.eval_on_selector_all("#results-table tbody tr[data-seq] td:nth-child(8)", "c => c.map(x => x.textContent)")
    assert all("deepseek-v4" in c for c in cleared)
    # Paging: 25 per page over every entry.
    page.click("#reset-button")
    page.select_option("select[name=limit]", "25")
    page.click("#search-button")
    expect(ROWS(page)).to_have_count(25)
    expect(ROWS(page).first).to_have_attribute("data-seq", str(TOTAL))
    page.click("#next-page")
    expect(ROWS(page).first).to_have_attribute("data-seq", str(TOTAL - 25))
    assert _seqs(page) == list(range(TOTAL - 25, 0, -1))
    assert page.is_disabled("#next-page") and page.is_enabled("#prev-page")
    page.click("#prev-page")
    expect(ROWS(page).first).to_have_attribute("data-seq", str(TOTAL))


def test_open_a_decision(page: Any, site: Site) -> None:
    sign_in(page, site)
    decision_id = site.real_decisions[1]  # regulated, a real decision of the policy engine
    page.click(f"#results-table tr[data-seq='{TOTAL - 1}'] a.decision-link")
    page.wait_for_selector("#detail:not([hidden])")
    assert page.inner_text("#detail-id") == decision_id
    badges = page.inner_text("#detail-status")
    assert "Leaf: valid" in badges and "Inclusion proof: valid" in badges
    assert int(page.locator("#detail-allowed tbody tr").count()) >= 1
    denied = page.inner_text("#detail-denied")
    assert "SAFETY_POST_TRAINING" in denied or "UNSUITABLE_PRICE" in denied
    # A licence reason shows the clause it rests on (the example workload's jurisdictions include EU).
    clauses = page.eval_on_selector_all("#detail-denied cite.clause", "c => c.map(x => x.textContent)")
    assert "Tencent Hunyuan Community License §1(l), §5(c)" in clauses
    assert ("LICENCE_TERRITORY Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in "
            "EU, GB, KR, and the workload's jurisdictions include EU") in denied
    assert "regulated" in page.inner_text("#detail-workload")
    page.screenshot(path=str(ARTIFACTS / "test_open_a_decision-detail.png"), full_page=True)
    page.click("#back")
    page.wait_for_selector("#results:not([hidden])")


def test_period_report_from_the_page(page: Any, site: Site) -> None:
    # Before the tampering test below (same site): the record is still intact here.
    sign_in(page, site)
    page.fill("#report-form input[name=from]", "2026-03-02T00:00:00")
    page.fill("#report-form input[name=to]", "2026-03-20T00:00:00")  # the past entries: 7 h apart
    page.click("#report-button")
    link = page.locator("#report-result.ok a")
    expect(link).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        link.click()
    html = open(download.value.path(), encoding="utf-8").read()
    verdict = html[html.index('id="verdict"'):][:300]
    assert "RECORD INTACT" in verdict, verdict
    assert f"seq 1..{PAST_ENTRIES}" in html  # the period's entries; the pack may reach a later checkpoint
    page.screenshot(path=str(ARTIFACTS / "ui-period-report.png"), full_page=True)


def test_verify_this_range_then_catch_tampering(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.fill("#verify-form input[name=from_seq]", "1")
    page.fill("#verify-form input[name=to_seq]", str(TOTAL))
    page.click("#verify-button")
    page.wait_for_selector("#verify-result.ok")
    assert f"{TOTAL} entries" in page.inner_text("#verify-result")
    # An attacker edits a queryable column; the same button now names the seq.
    with superuser(site.database_url) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_leaves SET outcome = CASE outcome WHEN 'allow' THEN 'deny' "
                     "ELSE 'allow' END WHERE seq = 5")
    page.click("#verify-button")
    page.wait_for_selector("#verify-result.bad")
    text = page.inner_text("#verify-result")
    assert "first bad seq 5" in text and "column outcome" in text

