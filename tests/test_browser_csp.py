"""Every kind of page in chromium under the site's Content-Security-Policy: each renders, its
scripts and htmx work, and not one violation is reported (tests/test_browser.py counts them
for every browser test)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import media_samples as samples
from tests.media_api import make_asset
from tests.test_browser import (  # noqa: F401
    VIOLATIONS,
    browser,
    live,
    no_csp_violations,
    signed_in,
    static_from_finders,
    webm,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def visit(page, url: str, selector: str) -> None:
    reply = page.goto(url)
    assert reply.status == 200, url
    page.wait_for_selector(selector, state="attached")
    page.wait_for_load_state("load")  # deferred scripts ran


def test_every_page_runs_under_the_policy(browser, live, people):  # noqa: F811
    case = people.case
    items = {
        "image": make_asset(case, people.alice, samples.image("png"), "scene.png"),
        "video": make_asset(case, people.alice, webm(seconds=2), "clip.webm"),
        "audio": make_asset(case, people.alice, samples.wav(), "call.wav"),
        "pdf": make_asset(case, people.alice, samples.pdf(["One", "Two"]), "report.pdf"),
    }
    page = signed_in(browser, live, people.alice)
    visit(page, live.url + reverse("case-list"), "main")
    visit(page, live.url + reverse("case-create"), "form")
    visit(page, live.url + reverse("case-detail", args=[case.id]), "#case-live")
    assert page.evaluate("() => window.htmx.config.includeIndicatorStyles") is False
    page.wait_for_function("() => document.getElementById('live-state').textContent === ''")
    visit(page, live.url + reverse("member-list", args=[case.id]), "main")
    for asset in items.values():  # image viewer, player, waveform, PDF pages
        visit(page, live.url + reverse("media-detail", args=[case.id, asset.id]), "main")
    visit(page, live.url + reverse("case-audit", args=[case.id]), "#verify-result")
    audit_url = page.url
    page.click("text=Verify chain")
    page.wait_for_selector("#verify-result .verify.ok")  # swapped in by htmx
    assert page.url == audit_url  # no navigation: htmx did it, under the policy
    staff = signed_in(browser, live, people.admin)
    visit(staff, live.url + reverse("staff-case-list"), "main")
    visit(staff, live.url + reverse("break-glass", args=[case.id]), "form")
    visit(staff, live.url + reverse("model-list"), "main")
    visit(staff, live.url + reverse("model-register"), "form")
    assert VIOLATIONS == []


def test_a_violation_is_caught(browser, live, people):  # noqa: F811
    """Guards the checks: an inline style the policy forbids is reported, and counted."""
    page = signed_in(browser, live, people.alice)
    visit(page, live.url + reverse("case-list"), "main")
    page.evaluate("() => { document.body.setAttribute('style', 'color: red'); }")
    page.wait_for_timeout(300)  # the report is an event: let it arrive
    assert any("style-src" in v for v in VIOLATIONS), VIOLATIONS
    VIOLATIONS.clear()  # this one was on purpose
