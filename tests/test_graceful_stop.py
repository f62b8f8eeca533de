"""SIGTERM during an answer: the inference worker stops it, puts the question back in the
queue with its attempt not spent, and exits; after the restart it runs again from the start
and succeeds. Ctrl-C of the whole site leaves nothing "running" either."""

from __future__ import annotations

import signal

import pytest

from tests.site_driver import FINISHED, TINY_TEXT, Site, running_site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
LONG_ANSWERS = {"GEMMA_MAX_TOKENS": "1500", "GEMMA_N_THREADS": "1"}
TRIES = 8  # questions asked, at most, to catch one mid-answer


@pytest.fixture
def site(tmp_path):
    with running_site(tmp_path, LONG_ANSWERS) as site:
        yield site


def requeued(site: Site, analysis_id: str) -> bool:
    return f"analysis {analysis_id} queued again: its worker was told to stop" in "".join(
        site.lines
    )


def test_sigterm_requeues_the_answer_without_spending_an_attempt(site):
    case = site.create_case()
    for i in range(TRIES):
        analysis_id, streaming = site.ask_and_catch_streaming(case, f"Stopped mid-answer {i}?")
        if not streaming:
            continue
        mark = len(site.lines)
        site.kill("inference", signal.SIGTERM)
        # It exits by itself (status 0): the supervisor's grace period never runs out.
        assert site.wait_for([r"inference exited unexpectedly \(status 0\)"], 60, since=mark)
        if requeued(site, analysis_id):
            break
    else:
        pytest.fail("no answer was streaming when the worker was told to stop")
    assert "inference did not stop in time" not in "".join(site.lines)

    # The restarted worker runs it again from the beginning, as its first attempt.
    assert wait(lambda: site.rows()[analysis_id]["status"] in FINISHED, 120)
    row = site.rows()[analysis_id]
    assert (row["status"], row["attempts"]) == ("succeeded", 1)


def test_ctrl_c_leaves_no_answer_running_and_the_next_start_finishes_it(tmp_path):
    site = Site(tmp_path, LONG_ANSWERS)
    try:
        site.start()
        site.sign_in()
        case = site.create_case()
        asked = [site.ask(case, f"Asked before Ctrl-C, {i}?") for i in range(3)]
        site.proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal, whatever is running
        assert site.proc.wait(timeout=60) == 0
    finally:
        site.stop()
    assert site.leftovers() == []
    assert "inference did not stop in time" not in "".join(site.lines)
    rows = site.rows()
    assert all(rows[a]["status"] != "running" for a in asked), rows
    assert all(rows[a]["status"] == "succeeded" or rows[a]["attempts"] == 0 for a in asked)

    again = Site(tmp_path, LONG_ANSWERS)
    try:
        again.start()
        assert wait(lambda: all(again.rows()[a]["status"] in FINISHED for a in asked), 180)
    finally:
        assert again.stop() == 0
    rows = again.rows()
    assert all((rows[a]["status"], rows[a]["attempts"]) == ("succeeded", 1) for a in asked)
