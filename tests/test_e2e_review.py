"""A reviewer's day end to end in a real browser (Debian's chromium through Playwright).

One journey over the real stack (uvicorn + the ASGI app, Redis, a Celery worker, llama.cpp
on the tiny Gemma 4): sign in, create a case, add a member, upload an image, a video, an
audio file and a document with progress bars, ask and watch the answer grow, reload in the
middle and see it go on, note a time range on the video and click its time code, mark the
answer reviewed, export the report and read its PDF, search a word of the document, find
all of it on the audit page, and get a 404 as an outsider. Every page visited is checked
with axe-core (no serious or critical violation) and for console errors; the main pages
are photographed into docs/screenshots/ for the README.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse

from analysis import streaming
from analysis.models import Analysis, AuditEvent, Case, MediaAsset
from analysis.report_check import check, report_text
from tests import media_samples as samples
from tests.base import PASSWORD
from tests.test_browser import (  # noqa: F401 (fixtures)
    REPORT_VIOLATIONS,
    ROWS_SETTLED,
    VIOLATIONS,
    WAIT_MS,
    browser,
    live,
    no_csp_violations,
    static_from_finders,
    webm,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
# axe.min.js run as a function body: `this` and `window` are the page's window.
AXE_SOURCE = "() => { " + AXE.read_text(encoding="utf-8") + "\n}"
DOCUMENT = "Statement of the night guard.\nThe courier wore a turquoise raincoat.\n"

AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
}"""

GROWTH = """(id) => {
  window.__lengths = [];
  // The card itself may be redrawn while it streams: read the current one at each change.
  const seen = () => {
    const answer = document.querySelector("#analysis-" + id + " [data-role=answer]");
    const n = answer ? answer.textContent.length : 0;
    if (n && n !== window.__lengths[window.__lengths.length - 1]) window.__lengths.push(n);
  };
  const watch = { childList: true, characterData: true, subtree: true };
  new MutationObserver(seen).observe(document.querySelector("#analyses"), watch);
  return Number(document.querySelector("#analysis-" + id).dataset.seq || 0);
}"""


class Tab:
    """One signed-in browser context under the site's CSP (violations fail the test, as in
    every browser test): its console errors, and axe over each page."""

    def __init__(self, chromium, server, user, **options) -> None:
        self.context = chromium.new_context(**options)
        self.context.expose_binding(
            "reportCspViolation", lambda source, text: VIOLATIONS.append(text)
        )
        self.context.add_init_script(REPORT_VIOLATIONS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.live = server
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        if user is not None:
            self.sign_in(user)

    def sign_in(self, user) -> None:
        self.page.goto(f"{self.live.url}/login/")
        self.page.fill("input[name=username]", user.get_username())
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("main button[type=submit]")
        self.page.wait_for_url(lambda url: "/login/" not in url)

    def go(self, path: str):
        return self.page.goto(self.live.url + path)

    def axe(self, label: str) -> None:
        # Evaluated by the test driver, not loaded by the page: the CSP rightly refuses a
        # script tag that is not the site's own.
        if not self.page.evaluate("() => typeof axe !== 'undefined'"):
            self.page.evaluate(AXE_SOURCE)
        violations = self.page.evaluate(AXE_RUN)
        assert not violations, (label, violations)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def paced(monkeypatch):
    """Token batches a little apart, so a reload lands in the middle of an answer (the tiny
    model is otherwise done before the page is)."""
    import time

    original = streaming.TokenStream.flush

    def flush(self) -> None:
        original(self)
        time.sleep(0.12)

    monkeypatch.setattr(streaming.TokenStream, "flush", flush)


def create_case_and_member(tab: Tab, people) -> Case:
    page = tab.page
    tab.go(reverse("case-create"))
    page.fill("input[name=title]", "Night delivery")
    page.fill("input[name=reference]", "2026-QC-0016")
    page.click("main button[type=submit]")
    page.wait_for_selector("#upload-zone")
    case = Case.objects.get(reference="2026-QC-0016")
    tab.go(reverse("member-list", args=[case.id]))
    page.fill("input[name=user]", people.bob.get_username())
    page.select_option("select[name=role]", "reviewer")
    page.click("form[action$='members/add/'] button[type=submit]")
    page.wait_for_selector(f"text={people.bob.get_username()}")
    return case


def upload_four(tab: Tab, case: Case) -> None:
    page = tab.page
    tab.go(reverse("case-detail", args=[case.id]))
    page.set_input_files(
        "#upload-input",
        [
            {"name": "porch.png", "mimeType": "image/png", "buffer": samples.image("png")},
            {"name": "doorbell.webm", "mimeType": "video/webm", "buffer": webm(seconds=3)},
            {"name": "call.wav", "mimeType": "audio/wav", "buffer": samples.wav(seconds=1)},
            {"name": "statement.txt", "mimeType": "text/plain", "buffer": DOCUMENT.encode()},
        ],
    )
    page.wait_for_function(ROWS_SETTLED, arg=4)
    for row in page.query_selector_all("#upload-list li"):
        bar = row.query_selector("progress")
        assert row.get_attribute("class") == "done", row.inner_text()
        assert bar.get_attribute("value") == bar.get_attribute("max")
    page.wait_for_function(
        "() => document.querySelectorAll('.media-item[data-status=ready]').length === 4"
    )
    # Finished rows leave the drop zone; the cards below are what stays.
    page.wait_for_function("() => document.querySelectorAll('#upload-list li').length === 0")


def ask_and_reload(tab: Tab, case: Case) -> Analysis:
    page = tab.page
    page.fill("#ask-form textarea[name=question]", "Who comes to the door?")
    page.click("#ask-form button[type=submit]")
    page.wait_for_selector("#analyses .analysis")
    analysis = Analysis.objects.get(case=case)
    card = f"#analysis-{analysis.id}"
    # Watched from whatever the card shows now (a loaded machine may have streamed a little
    # already): three more batches must each grow it.
    start = page.evaluate(GROWTH, str(analysis.id))
    page.wait_for_function(
        f"(start) => Number(document.querySelector('{card}').dataset.seq) >= start + 3", arg=start
    )
    lengths = page.evaluate("() => window.__lengths")
    assert len(set(lengths)) >= 3 and lengths == sorted(lengths), lengths  # it grew, in steps
    reloaded = page.reload()
    html = reloaded.text()
    assert 'data-status="running"' in html  # the server drew a card still being written
    page.wait_for_function(f"() => document.querySelector('{card}').dataset.status === 'succeeded'")
    analysis.refresh_from_db()
    assert page.text_content(f"{card} [data-role=answer]").strip() == analysis.answer.strip()
    return analysis


def note_and_click_time_code(tab: Tab, case: Case) -> None:
    page = tab.page
    video = MediaAsset.objects.get(case=case, filename="doorbell.webm")
    tab.go(reverse("media-detail", args=[case.id, video.id]))
    page.fill("#media-note-text", "Someone steps onto the porch")
    page.fill("#media-note-start", "0:00:02")
    page.fill("#media-note-end", "0:00:03")
    page.click(".note-form button[type=submit]")
    page.wait_for_selector("a.timecode")
    page.click("a.timecode")
    at = page.wait_for_function(
        "() => { const v = document.querySelector('video[data-player]');"
        " return v.readyState >= 1 && Math.abs(v.currentTime - 2) < 0.3 && v.currentTime; }"
    )
    assert abs(at.json_value() - 2) < 0.3
    tab.axe("media page")
    tab.shot("media-video")


def mark_and_export(tab: Tab, case: Case, analysis: Analysis) -> None:
    page = tab.page
    tab.go(reverse("case-detail", args=[case.id]))
    page.click(f"#review-{analysis.id} button[name=state][value=reviewed]")
    page.wait_for_selector(f"#review-{analysis.id} .badge.mark-reviewed")
    page.click(f"#review-{analysis.id} button:has-text('Pin for the report')")
    page.wait_for_selector(f"#review-{analysis.id} .badge.pinned")
    tab.axe("case page")
    tab.shot("case")
    with page.expect_download() as download:
        page.click("form.report button[value=pdf]")
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"%PDF-")
    text = report_text(data)
    for item in MediaAsset.objects.filter(case=case):
        assert item.sha256 in text and item.filename in text
    assert "Reviewed" in text and analysis.question in text
    assert check(data).ok, check(data).problems
    assert io.BytesIO(data)  # the bytes handed out are the bytes checked


def search_the_document(tab: Tab, case: Case) -> None:
    page = tab.page
    tab.go(reverse("search"))
    page.fill("#search-q", "turquoise")
    page.keyboard.press("Enter")
    page.wait_for_selector(".hit mark")
    tab.axe("search results")
    tab.shot("search")
    page.click(".hit-link")
    page.wait_for_selector("pre.text-doc")
    assert "turquoise raincoat" in page.text_content("pre.text-doc")


def audit_shows_the_day(tab: Tab, case: Case) -> None:
    page = tab.page
    tab.go(reverse("case-audit", args=[case.id]))
    table = page.text_content("table.audit")
    for action in ("Case created", "Member added", "Media uploaded", "Analysis asked",
                   "Note added", "Answer marked", "Case report exported"):  # fmt: skip
        assert action in table, action
    assert "“doorbell.webm”" in table  # targets by name, not by id
    tab.axe("audit page")
    tab.shot("audit")
    exported = AuditEvent.objects.filter(case=case, action=AuditEvent.Action.CASE_EXPORTED)
    assert exported.count() == 1


def test_a_reviewers_day(browser, live, people, paced, settings):  # noqa: F811
    settings.GEMMA_MAX_TOKENS = 40
    alice = Tab(browser, live, people.alice)
    case = create_case_and_member(alice, people)
    alice.axe("members page")
    bob = Tab(browser, live, people.bob, timezone_id="America/New_York")
    upload_four(bob, case)
    analysis = ask_and_reload(bob, case)
    # Times are the reader's own: New York here, not the server's UTC.
    local = bob.page.text_content(f"#analysis-{analysis.id} header time")
    assert "UTC" not in local and any(z in local for z in ("EST", "EDT", "GMT-5", "GMT-4"))
    note_and_click_time_code(bob, case)
    mark_and_export(bob, case, analysis)
    search_the_document(bob, case)
    audit_shows_the_day(alice, case)
    alice.go(reverse("case-list"))
    alice.axe("case list")
    alice.shot("cases")

    # Keyboard: the first Tab reaches the skip link, and focus is drawn.
    alice.page.keyboard.press("Tab")
    outline = alice.page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.className, s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] == "skip" and outline[1] != "none", outline

    # A phone: the case page fits its width.
    phone = Tab(browser, live, people.bob, viewport={"width": 390, "height": 844})
    phone.go(reverse("case-detail", args=[case.id]))
    overflow = phone.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    phone.axe("case page on a phone")
    phone.shot("case-phone")

    # Without JavaScript the read-only pages still read.
    plain = browser.new_context(java_script_enabled=False).new_page()
    plain.goto(f"{live.url}/login/")
    plain.fill("input[name=username]", "carol")
    plain.fill("input[name=password]", PASSWORD)
    plain.click("main button[type=submit]")
    plain.wait_for_url(lambda url: "/login/" not in url)
    case.memberships.create(user=people.carol, role="viewer")
    plain.goto(live.url + reverse("case-detail", args=[case.id]))
    body = plain.text_content("main")
    assert analysis.answer.strip()[:20] in body and "doorbell.webm" in body

    # An outsider: 404 on the case URL, on a page with a way back.
    mallory = Tab(browser, live, people.mallory)
    response = mallory.go(reverse("case-detail", args=[case.id]))
    assert response.status == 404
    assert mallory.page.is_visible("text=Back to my cases")
    mallory.axe("404 page")

    for tab in (alice, bob, phone):
        assert not tab.errors, tab.errors
