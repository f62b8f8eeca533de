"""The web process dies mid-answer and the answer finishes before it is back: the case page,
in Debian's chromium, reconnects by itself and ends showing the saved answer.

The whole site is `manage.py serve` as a user runs it (embedded Valkey, SQLite, the tiny
Gemma 4; tests/site_driver.py). The supervisor is paused (SIGSTOP) while the web process is
killed, so the web stays down until the answer is saved: the page never hears its last token
batches nor its final status live, and only its resume after the reconnect can tell it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal

import pytest

from tests.site_driver import FINISHED, PASSWORD, TINY_TEXT, Site, wait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"), reason="no chromium (apt install chromium)"
    ),
]
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

LONG_ANSWERS = {"GEMMA_MAX_TOKENS": "1000", "GEMMA_N_THREADS": "1"}
TRIES = 20  # questions asked, at most, to catch one streaming when the web dies
WAIT_MS = 120_000  # bounds only reached when something is wrong
CONNECTED = "() => document.getElementById('live-state').textContent === ''"
HAS_CARD = "(id) => !!document.getElementById('analysis-' + id)"
SHOWN = """(id) => {
  const card = document.getElementById("analysis-" + id);
  return card ? { status: card.dataset.status,
                  text: card.querySelector("[data-role=answer]").textContent } : null;
}"""
# The final rendering is fetched after the final status: wait for its text, not the status.
SAVED_SHOWN = f"(id) => (({SHOWN})(id) || {{}}).status === 'succeeded' && " \
    f"({SHOWN})(id).text.trim() !== ''"  # fmt: skip


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path, LONG_ANSWERS)
    try:
        site.start()
        site.sign_in()
        yield site
    finally:
        os.kill(site.proc.pid, signal.SIGCONT)  # never leave the supervisor paused
        code = site.stop()
        assert site.leftovers() == [], "children left behind"
        assert code == 0, "".join(site.lines[-60:])


@contextlib.contextmanager
def signed_in_page(site: Site):
    """Chromium on the site, signed in as its admin through the login form."""
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{site.url}/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        try:
            yield page
        finally:
            chromium.close()


@pytest.fixture
def page(site):
    with signed_in_page(site) as page:
        yield page


def streamed(site: Site, analysis_id: str) -> bool:
    """Its first token batch is in the log (queued no more)."""
    return any(r["status"] != "queued" and r["chunks"] for r in site.progress([analysis_id]))


def ask_on_the_page(page, site: Site, question: str) -> str:
    before = set(site.rows())
    page.fill("#ask-form textarea[name=question]", question)
    page.click("#ask-form button[type=submit]")
    assert wait(lambda: set(site.rows()) - before, 60, step=0.05)
    (analysis_id,) = set(site.rows()) - before
    return analysis_id


def test_a_card_that_finished_while_the_web_was_down_shows_the_saved_answer(site, page):
    case = site.create_case()
    page.goto(f"{site.url}/cases/{case}/")
    page.wait_for_function(CONNECTED)
    for i in range(TRIES):  # until the web dies while the page watches an answer stream
        analysis_id = ask_on_the_page(page, site, f"What happens on the line, take {i}?")
        # The tiny model's answers last a fraction of a second: watch the log, not the page.
        assert wait(lambda a=analysis_id: streamed(site, a), 60, step=0.01)
        # The ask's reply (the card) must be on the page before the web dies: the row is
        # saved before the reply is sent, and a page without the card has nothing to resume.
        page.wait_for_function(HAS_CARD, arg=analysis_id)
        # The inference worker is held still (SIGSTOP) while the web dies, so the answer is
        # still running then; it goes on, and ends, while the web is away.
        worker = site.kill("inference", signal.SIGSTOP)
        try:
            if site.rows()[analysis_id]["status"] == "running":
                os.kill(site.proc.pid, signal.SIGSTOP)  # no restart until the answer is saved
                site.kill("web")
                break
        finally:
            os.kill(worker, signal.SIGCONT)
        page.wait_for_function(CONNECTED)  # finished too soon: ask a longer one
    else:
        pytest.fail("no answer was streaming when the web process died")
    page.wait_for_function(HAS_CARD, arg=analysis_id)

    page.wait_for_function("() => document.getElementById('live-state').textContent !== ''")
    assert wait(lambda: site.rows()[analysis_id]["status"] in FINISHED, 300)
    saved = site.rows()[analysis_id]
    assert saved["status"] == "succeeded", saved["error"]
    # The page missed the end: it still shows the card as unfinished (queued, when even the
    # running status had not reached it), with part of the text or none.
    shown = page.evaluate(SHOWN, analysis_id)
    assert shown["status"] in ("queued", "running")
    assert saved["answer"].startswith(shown["text"])

    os.kill(site.proc.pid, signal.SIGCONT)  # the supervisor restarts the web process
    page.wait_for_function(CONNECTED)
    page.wait_for_function(SAVED_SHOWN, arg=analysis_id)
    shown = page.evaluate(SHOWN, analysis_id)
    assert shown["text"].strip() == saved["answer"].strip()
