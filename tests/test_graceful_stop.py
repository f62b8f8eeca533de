"""Ctrl-C during an answer: the question goes back to the queue, its attempt not spent, and
runs again from the beginning on the next start. Nothing stays "running" across a restart."""

from __future__ import annotations

import signal

import pytest

from tests.site_driver import FINISHED, TINY_TEXT, Site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
LONG_ANSWERS = {"GEMMA_MAX_TOKENS": "1500", "GEMMA_N_THREADS": "1"}


def test_a_stopped_site_requeues_the_running_answer_and_runs_it_on_the_next_start(tmp_path):
    site = Site(tmp_path, LONG_ANSWERS)
    try:
        site.start()
        site.sign_in()
        case = site.create_case()
        asked = site.ask(case, "A long answer, interrupted by Ctrl-C?")
        assert wait(lambda: any(r["chunks"] for r in site.progress([asked])), 120)
        site.proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal
        assert site.proc.wait(timeout=60) == 0
    finally:
        site.stop()
    log = "".join(site.lines)
    assert site.leftovers() == []
    # The worker stopped the answer itself, well inside the supervisor's grace period.
    assert "stopped inference (status 0)" in log
    assert "inference did not stop in time" not in log
    assert f"analysis {asked} queued again: its worker was told to stop" in log
    row = site.rows()[asked]
    assert (row["status"], row["attempts"]) == ("queued", 0)

    again = Site(tmp_path, LONG_ANSWERS)
    try:
        again.start()
        assert wait(lambda: again.rows()[asked]["status"] in FINISHED, 180)
    finally:
        assert again.stop() == 0
    row = again.rows()[asked]
    assert (row["status"], row["attempts"]) == ("succeeded", 1)
    assert row["answer"]
