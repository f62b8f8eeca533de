"""The broker is away for 10 s while an answer streams: in Debian's chromium, the case page
says it is reconnecting, comes back by itself and ends with the saved answer.

The site is `manage.py serve` against a Valkey this test owns (REDIS_URL), so the test
decides when the broker is down (tests/test_broker_outage.py is the same scenario driven by
a WebSocket client, with the log's line count).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.site_driver import FINISHED, wait

# The same broker (a Valkey this test owns) and site as the WebSocket-client version.
from tests.test_broker_outage import OUTAGE, broker, site  # noqa: F401 - fixtures
from tests.test_browser_web_restart import (
    CONNECTED,
    HAS_CARD,
    SAVED_SHOWN,
    SHOWN,
    ask_on_the_page,
    pytestmark,  # noqa: F401 - the same skips: tiny model, chromium
    signed_in_page,
    streamed,
)

TRIES = 20  # questions asked, at most, to catch one streaming when the broker goes


def test_the_page_rides_out_a_broker_outage_and_shows_the_saved_answer(site, broker):  # noqa: F811
    case = site.create_case()
    with signed_in_page(site) as page:
        page.goto(f"{site.url}/cases/{case}/")
        page.wait_for_function(CONNECTED)
        for i in range(TRIES):  # until the broker goes while the page watches an answer stream
            analysis_id = ask_on_the_page(page, site, f"What happens on the line, take {i}?")
            # The tiny model's answers last a fraction of a second: watch the log, not the page,
            # and hold the inference worker still (SIGSTOP) while the broker goes, so the
            # answer is still running when it does; it goes on once the broker is away.
            assert wait(lambda a=analysis_id: streamed(site, a), 60, step=0.01)
            worker = site.kill("inference", signal.SIGSTOP)
            try:
                if site.rows()[analysis_id]["status"] == "running":
                    broker.stop()
                    break
            finally:
                os.kill(worker, signal.SIGCONT)
        else:
            pytest.fail("no answer was streaming when the broker went away")

        page.wait_for_function(HAS_CARD, arg=analysis_id)
        page.wait_for_function("() => document.getElementById('live-state').textContent !== ''")
        time.sleep(OUTAGE / 2)
        # Asked by someone else while the broker is away: the page hears nothing of it live
        # (it may even be answered before the page is back), yet must show it in the end.
        during = site.ask(case, "Asked during the outage?")
        time.sleep(OUTAGE / 2)
        broker.start(timeout=30)
        assert wait(lambda: site.rows()[analysis_id]["status"] in FINISHED, 300)
        saved = site.rows()[analysis_id]
        assert saved["status"] == "succeeded", saved["error"]
        page.wait_for_function(CONNECTED)
        page.wait_for_function(SAVED_SHOWN, arg=analysis_id)
        shown = page.evaluate(SHOWN, analysis_id)
        assert shown["text"].strip() == saved["answer"].strip()
        assert wait(lambda: site.rows()[during]["status"] in FINISHED, 300)
        page.wait_for_function(SAVED_SHOWN, arg=during)
        assert site.rows()[during]["status"] == "succeeded"
