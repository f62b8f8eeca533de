"""The case and media pages in a real browser: Debian's chromium, driven by Playwright.

Every page runs under the site's Content-Security-Policy, and any violation a page reports
fails its test (tests/test_browser_csp.py visits every kind of page).

Everything behind the browser is real: the project's ASGI application (upload fast path,
Django, Channels) served by uvicorn in a thread, the Redis channel layer and broker, a Celery
worker consuming the media and inference queues, llama.cpp on the tiny Gemma 4. Without a
chromium these tests skip on a developer's machine and fail under CI (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from channels.layers import channel_layers
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from analysis import recovery
from analysis.media import storage
from analysis.models import Analysis, MediaAsset
from gemma_web.asgi import django_asgi_app
from gemma_web.celery import app as celery_app
from tests import media_samples as samples
from tests.base import PASSWORD
from tests.live_server import LiveServer
from tests.media_api import make_asset

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_MS = 90_000  # a shared 2-core machine: generous, and only reached when something is wrong

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium for tests/test_browser.py (.ci/run installs it)")
    pytest.skip("no chromium on this machine (apt install chromium)", allow_module_level=True)

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright


@pytest.fixture
def static_from_finders(settings):
    """Static files straight from static/ and the apps (no collectstatic in a test run): the
    middleware chain is rebuilt so that WhiteNoise reads these settings, then rebuilt back."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    django_asgi_app.load_middleware(is_async=True)
    yield
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = False
    django_asgi_app.load_middleware(is_async=True)


@pytest.fixture
def live(settings, fresh_engine, static_from_finders):
    settings.STREAM_FLUSH_INTERVAL = 0.002  # several token batches even from the tiny model
    settings.GEMMA_MAX_TOKENS = 32
    with celery_app.connection_for_write() as conn:
        for queue in ("media", "inference"):
            conn.default_channel.queue_purge(queue)  # leftovers from other runs
    worker = start_worker(
        celery_app, pool="solo", concurrency=1, queues=["media", "inference"],
        perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30,
    )  # fmt: skip
    with worker, LiveServer() as server:
        yield server
    # The server's event loop is gone, but the process-wide channel layer still counts it as
    # receiving: later tests (their own loops) get a fresh layer.
    channel_layers.backends = {}


@pytest.fixture
def browser(monkeypatch, live):
    """Chromium; it closes (and with it every page's WebSocket) before the server stops."""
    # Playwright's sync API keeps an event loop on this thread, so Django takes every ORM call
    # here for one made from async code; none is (the loop only talks to the browser).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
        # The ORM calls the test made while Playwright ran opened their own connection (its
        # context, not the fixture's); close it here, or PostgreSQL cannot drop the test
        # database at the end of the run ("being accessed by other users").
        connections.close_all()


# Every page runs under the site's CSP; a violation anywhere fails the test that caused it.
REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (e) =>
  window.reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} ` +
                            `at ${e.documentURI}:${e.lineNumber}`));"""
VIOLATIONS: list[str] = []


@pytest.fixture(autouse=True)
def no_csp_violations():
    VIOLATIONS.clear()
    yield
    assert VIOLATIONS == [], f"Content-Security-Policy violations: {VIOLATIONS}"


def csp_watched_context(browser):
    """A fresh browser context (its own cookies) whose pages report CSP violations: the
    DOM event, and chromium's console message, in case a page's script is itself blocked."""
    context = browser.new_context()
    context.expose_binding("reportCspViolation", lambda source, text: VIOLATIONS.append(text))
    context.add_init_script(REPORT_VIOLATIONS)

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            VIOLATIONS.append(message.text)

    context.on("console", on_console)
    return context


def signed_in(browser, live, user):
    """A fresh browser context (its own cookies) signed in through the login form."""
    page = csp_watched_context(browser).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{live.url}/login/")
    page.fill("input[name=username]", user.get_username())
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")  # the first submit button is "Sign out" elsewhere
    page.wait_for_url(lambda url: "/login/" not in url)
    return page


DROP_A_TEXT_FILE = """() => {
  const transfer = new DataTransfer();
  transfer.items.add(new File(["Minutes of the 4 March meeting.\\n"], "notes.txt",
                              { type: "text/plain" }));
  const zone = document.getElementById("upload-zone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
}"""

ROWS_SETTLED = """(count) => {
  const rows = [...document.querySelectorAll("#upload-list li")];
  return rows.length === count && rows.every((li) => ["done", "error"].includes(li.className));
}"""


def test_chosen_and_dropped_files_upload_with_progress_and_turn_ready(browser, live, people):
    page = signed_in(browser, live, people.bob)
    sent = []  # the page speaks tus: creation POSTs and PATCHes with Tus-Resumable
    page.on("request", lambda r: sent.append((r.method, r.headers.get("tus-resumable"))))
    page.goto(live.url + reverse("case-detail", args=[people.case.id]))
    page.set_input_files(
        "#upload-input",
        [
            {"name": "scene.png", "mimeType": "image/png", "buffer": samples.image("png")},
            {"name": "clip.webm", "mimeType": "video/webm", "buffer": webm()},
            {"name": "invoice.png", "mimeType": "image/png", "buffer": b"<!DOCTYPE html><html>"},
        ],
    )
    page.evaluate(DROP_A_TEXT_FILE)
    page.wait_for_function(ROWS_SETTLED, arg=4)

    rows = {
        li.query_selector(".name").inner_text(): li
        for li in page.query_selector_all("#upload-list li")
    }
    assert rows.keys() == {"scene.png", "clip.webm", "invoice.png", "notes.txt"}
    refused = rows.pop("invoice.png")
    assert refused.get_attribute("class") == "error"
    assert "Detected an HTML/XML document" in refused.inner_text()
    for name, row in rows.items():
        assert row.get_attribute("class") == "done", (name, row.inner_text())
        bar = row.query_selector("progress")
        assert bar.get_attribute("value") == bar.get_attribute("max")  # the bar went full

    # The media worker makes the derived files; the cards turn ready live (WebSocket).
    page.wait_for_function(
        "() => document.querySelectorAll('.media-item[data-status=ready]').length === 3"
    )
    assert sorted(MediaAsset.objects.values_list("filename", "status")) == [
        ("clip.webm", "ready"), ("notes.txt", "ready"), ("scene.png", "ready"),
    ]  # fmt: skip
    assert not list((storage.root() / "uploads").glob("*"))  # no partial file left behind
    assert sent.count(("POST", "1.0.0")) == 4 and sent.count(("PATCH", "1.0.0")) >= 4


SEEK = """async (to) => {
  const video = document.querySelector("video[data-player]");
  const failed = new Promise((_, reject) =>
    video.addEventListener("error", () => reject(new Error("video error " + video.error.code))));
  if (video.readyState < 1) {
    await Promise.race([new Promise((r) => video.addEventListener("loadedmetadata", r)), failed]);
  }
  video.currentTime = to;
  await Promise.race([new Promise((r) => video.addEventListener("seeked", r)), failed]);
  return { duration: video.duration, at: video.currentTime };
}"""


def test_the_browser_seeks_in_a_served_video(browser, live, people):
    asset = make_asset(people.case, people.bob, webm(seconds=4), "bodycam.webm")
    page = signed_in(browser, live, people.carol)  # a viewer may watch
    file_url = reverse("media-file", args=[people.case.id, asset.id])
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith(file_url) else 0)
    page.goto(live.url + reverse("media-detail", args=[people.case.id, asset.id]))
    played = page.evaluate(SEEK, 3.0)
    assert played["duration"] == pytest.approx(4.0, abs=0.2)
    assert played["at"] == pytest.approx(3.0, abs=0.2)
    assert 206 in statuses  # the browser asked for byte ranges and got them


ASKED = """(before) => {
  const cards = [...document.querySelectorAll("#analyses .analysis")];
  return cards.length > before && cards.every((c) => c.dataset.status === "succeeded");
}"""


def watch_tokens(page) -> dict[int, str]:
    """The token batches this page receives over its WebSocket, by sequence number (a batch
    can come twice: live, and again when the page resumes from the last one it showed)."""
    texts: dict[int, str] = {}

    def on_frame(payload) -> None:
        message = json.loads(payload)
        if message.get("type") == "tokens":
            texts[message["seq"]] = message["text"]

    page.on("websocket", lambda socket: socket.on("framereceived", on_frame))
    return texts


def test_an_answer_streams_into_every_page_watching_the_case(browser, live, people):
    case_url = live.url + reverse("case-detail", args=[people.case.id])
    asker, watcher = signed_in(browser, live, people.bob), signed_in(browser, live, people.alice)
    streamed = {page: watch_tokens(page) for page in (asker, watcher)}
    for page in (asker, watcher):
        page.goto(case_url)
        page.wait_for_function("() => document.getElementById('live-state').textContent === ''")
    asker.fill("#ask-form textarea[name=question]", "What is the capital of France?")
    asker.click("#ask-form button[type=submit]")
    for page in (asker, watcher):
        page.wait_for_function(ASKED, arg=0)
    saved = Analysis.objects.get()
    assert saved.status == Analysis.Status.SUCCEEDED and saved.answer
    logged = dict(saved.chunks.values_list("seq", "text"))
    assert "".join(logged[seq] for seq in sorted(logged)) == saved.answer
    for page in (asker, watcher):
        shown = page.text_content(f"#analysis-{saved.id} [data-role=answer]")
        assert shown.strip() == saved.answer.strip()
        # It came over the socket as tokens (not only in the final rendering), each batch as
        # the log has it. Not necessarily every batch: the live path may drop one, and a card
        # first drawn by the server (or finished) needs no batch it already shows.
        batches = streamed[page]
        assert len(batches) >= 1
        assert batches == {seq: logged[seq] for seq in batches}


LABELS_SEEN = """() => {
  window.labelsSeen = new Set();
  const note = () => document.querySelectorAll("#analyses [data-role=status]")
    .forEach((badge) => window.labelsSeen.add(badge.textContent));
  new MutationObserver(note).observe(document.getElementById("analyses"),
    { subtree: true, childList: true, characterData: true });
}"""


def test_a_retried_answer_says_so_live_and_streams_again_from_the_start(browser, live, people):
    # The answer's worker died mid-answer: a claim by a process that is gone, half a text.
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Why?")
    analysis.start("inference@gone", 1)
    analysis.chunks.create(seq=1, text="half an answer from the dead worker")
    page = signed_in(browser, live, people.bob)
    page.goto(live.url + reverse("case-detail", args=[people.case.id]))
    page.wait_for_function("() => document.getElementById('live-state').textContent === ''")
    page.evaluate(LABELS_SEEN)

    old = timezone.now() - timedelta(hours=1)
    Analysis.objects.filter(pk=analysis.pk).update(heartbeat_at=old)
    # Queued again, and the test's worker runs it. From a thread of its own, as beat's sweep
    # runs: this one holds Playwright's event loop, where the channel layer cannot be called.
    swept: list[int] = []

    def run_sweep() -> None:
        try:
            swept.append(recovery.sweep())
        finally:
            connections.close_all()  # this thread's own: PostgreSQL must drop the database

    sweep = threading.Thread(target=run_sweep)
    sweep.start()
    sweep.join(timeout=60)
    assert swept == [1]
    page.wait_for_function(ASKED, arg=0)

    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.SUCCEEDED and analysis.attempts == 2
    assert "Retrying (attempt 2 of 3)" in page.evaluate("() => [...window.labelsSeen]")
    shown = page.text_content(f"#analysis-{analysis.id} [data-role=answer]")
    assert shown.strip() == analysis.answer.strip()
    assert "dead worker" not in shown


def webm(seconds: float = 2.0) -> bytes:
    return samples.video("webm", "libvpx-vp9", seconds=seconds, fps=10, size=(160, 120))
