"""The reviewer's workflow in Debian's chromium (Playwright), everything behind it real:
reload mid-stream, inert model output, citations that seek the case page's player, and the
ask form's found bugs (a refused ask, Reproduce on a card that finished live)."""

# ruff: noqa: F811 - the fixtures of tests/test_browser.py are imported, then requested
from __future__ import annotations

import time

import pytest
from django.urls import reverse

from analysis import streaming
from analysis.models import Analysis
from tests import media_samples as samples
from tests.media_api import make_asset
from tests.test_browser import (  # noqa: F401 - fixtures
    ASKED,
    browser,
    live,
    signed_in,
    static_from_finders,
    webm,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SPEED_SHOWN = """() => /tokens\\/s/.test(
  document.querySelector('#analyses [data-role=live]')?.textContent || '')"""
CANCELLED_SHOWN = """() => !!document.querySelector(
  '#analyses .analysis[data-status=cancelled] .badge.cancelled')"""


def case_page(browser, live, people, user=None):
    page = signed_in(browser, live, user or people.bob)
    page.goto(live.url + reverse("case-detail", args=[people.case.id]))
    page.wait_for_function("() => document.getElementById('live-state').textContent === ''")
    return page


def test_a_reload_mid_stream_ends_with_the_saved_answer(
    browser, live, people, settings, monkeypatch
):
    settings.GEMMA_MAX_TOKENS = 120
    push = streaming.TokenStream.push

    def slow_push(self, token: str) -> None:  # a slower model: the reload lands mid-answer
        time.sleep(0.02)
        push(self, token)

    monkeypatch.setattr(streaming.TokenStream, "push", slow_push)
    page = case_page(browser, live, people)
    page.fill("#ask-form textarea[name=question]", "Describe everything.")
    page.click("#ask-form button[type=submit]")
    page.wait_for_function("() => (document.querySelector('#analyses .analysis [data-role=answer]')"
                           "?.textContent || '').length > 5")  # fmt: skip
    assert Analysis.objects.get().status == Analysis.Status.RUNNING
    page.reload()
    page.wait_for_function(ASKED, arg=0)
    saved = Analysis.objects.get()
    shown = page.text_content(f"#analysis-{saved.id} [data-role=answer]")
    assert saved.status == Analysis.Status.SUCCEEDED and shown.strip() == saved.answer.strip()


def test_model_output_with_markup_renders_inert(browser, live, people):
    hostile = (
        '<script>window.pwned = 1</script>\n\n<img src=x onerror="window.pwned = 2">\n\n'
        "[open](javascript:window.pwned=3) **bold**"
    )
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?",
                                       status="succeeded", answer=hostile)  # fmt: skip
    page = case_page(browser, live, people)
    answer = page.locator(f"#analysis-{analysis.id} [data-role=answer]")
    assert answer.locator("strong").inner_text() == "bold"  # Markdown, rendered
    assert answer.locator("script, img, [onerror]").count() == 0
    assert "<script>window.pwned = 1</script>" in answer.inner_text()  # shown as text
    assert answer.locator("a[href^='javascript']").count() == 0
    page.get_by_text("[open](javascript", exact=False).click()
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.pwned") is None


def test_a_time_code_seeks_the_case_pages_player(browser, live, people):
    clip = make_asset(people.case, people.alice, webm(seconds=5), "bodycam.webm")
    analysis = Analysis.objects.create(
        case=people.case, created_by=people.bob, question="Q?", status="succeeded",
        answer="A door opens at [00:00:03].",
    )  # fmt: skip
    analysis.media.set([clip])
    page = case_page(browser, live, people)
    before = page.url
    page.click(f"#analysis-{analysis.id} a.cite[data-seek='3']")
    page.wait_for_function(
        "() => { const v = document.getElementById('case-player');"
        " return v.readyState >= 1 && Math.abs(v.currentTime - 3) < 0.01 && !v.seeking; }"
    )
    assert page.url == before  # the page stayed where it was
    assert page.evaluate("() => document.getElementById('case-player').currentTime") == 3


def test_after_a_refused_ask_the_next_ask_leaves_an_empty_form(browser, live, people):
    make_asset(people.case, people.alice, samples.image("png"), "scene.png")
    page = case_page(browser, live, people)
    # The form says before anyone submits that the model cannot take the image.
    assert "reads text only" in page.inner_text("#ask-form [data-role=media-note]")
    page.fill("#ask-form textarea[name=question]", "What is in the picture?")
    page.check("#ask-form input[name=media]")
    page.click("#ask-form button[type=submit]")
    page.wait_for_selector("#ask-form .error")
    assert "reads text only" in page.inner_text("#ask-form")
    assert "projector" not in page.inner_text("#ask-form")
    page.uncheck("#ask-form input[name=media]")
    page.fill("#ask-form textarea[name=question]", "What is the capital of France?")
    page.click("#ask-form button[type=submit]")
    page.wait_for_function(ASKED, arg=0)
    form = page.evaluate("""() => { const f = document.getElementById('ask-form'); f.reset();
      return { q: f.question.value, ticked: f.querySelectorAll('input:checked').length,
               errors: f.querySelectorAll('.error').length }; }""")
    assert form == {"q": "", "ticked": 0, "errors": 0}  # even after a reset
    # The card that finished live can be reproduced without a reload.
    saved = Analysis.objects.get()
    page.wait_for_selector(f"#analysis-{saved.id}.succeeded form.reproduce button")


def test_a_running_question_is_cancelled_from_its_card(
    browser, live, people, settings, monkeypatch
):
    settings.GEMMA_MAX_TOKENS = 300
    push = streaming.TokenStream.push

    def slow_push(self, token: str) -> None:
        time.sleep(0.02)
        push(self, token)

    monkeypatch.setattr(streaming.TokenStream, "push", slow_push)
    page = case_page(browser, live, people)
    page.fill("#ask-form textarea[name=question]", "Go on and on.")
    page.click("#ask-form button[type=submit]")
    page.wait_for_function(SPEED_SHOWN)
    page.click("#analyses [data-role=cancel]")
    page.wait_for_function(CANCELLED_SHOWN)
    saved = Analysis.objects.get()
    assert saved.status == Analysis.Status.CANCELLED and saved.answer
    shown = page.text_content(f"#analysis-{saved.id} [data-role=answer]")
    assert shown.strip() == saved.answer.strip()
