"""The real site heals itself: every child SIGKILLed in turn while answers stream.

`manage.py serve` runs on the tiny model with the embedded Valkey; the recovery limits come
from settings shrunk through the environment (tests/site_driver.py), so every wait here is
bounded by them, never by a wall-clock assertion.
"""

from __future__ import annotations

import pytest

from tests.site_driver import FINISHED, TINY_TEXT, Watcher, running_site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
# Long enough answers that a kill lands mid-answer (a few seconds each on the tiny model).
LONG_ANSWERS = {"GEMMA_MAX_TOKENS": "1000", "GEMMA_N_THREADS": "1"}
# Each child once, the broker last: the one whose death touches everything.
VICTIMS = ["inference", "worker", "beat", "web", "valkey"]
UP_WITHIN = 120  # seconds a child gets to come back; only reached when something is wrong
TRIES = 8  # questions asked, at most, to catch one mid-answer for each kill


@pytest.fixture
def site(tmp_path):
    with running_site(tmp_path, LONG_ANSWERS) as site:
        yield site


def test_it_recovers_from_killing_each_child_while_answers_stream(site):
    case = site.create_case()
    watcher = Watcher(site, case).start()
    asked: list[str] = []
    try:
        for victim in VICTIMS:
            interrupted = False
            for i in range(TRIES):  # until the kill lands while an answer streams
                analysis_id, interrupted = site.ask_and_catch_streaming(
                    case, f"Before {victim} dies, question {i}?"
                )
                watcher.follow(analysis_id)
                asked.append(analysis_id)
                if interrupted:
                    break
            assert interrupted, f"no answer was streaming when {victim} was to die"
            mark = len(site.lines)
            old_pid = site.kill(victim)
            # The supervisor restarts it; the site answers again without anyone.
            restarted = rf"started {victim} \(pid (?!{old_pid}\b)\d+\) \(restart 1\)"
            assert site.wait_for([restarted], UP_WITHIN, since=mark), "".join(site.lines[mark:])
            assert wait(site.answers, UP_WITHIN), f"site down after killing {victim}"
        # Every question ends: none stays queued or running.
        assert wait(lambda: all(r["status"] in FINISHED for r in site.rows().values()), 300)
        assert wait(lambda: all(watcher.status[a] in FINISHED for a in asked), 60)
    finally:
        watcher.stop()

    rows = site.rows()
    assert set(rows) == set(asked)
    for analysis_id in asked:
        row = rows[analysis_id]
        assert row["status"] == "succeeded" or (row["status"] == "failed" and row["error"])
        assert watcher.status[analysis_id] == row["status"]
        if row["status"] == "succeeded":
            # The text a reconnected socket streamed is the saved answer, nothing lost or twice.
            assert watcher.text[analysis_id] == row["answer"]
    # The inference worker's death was recovered by a retry that the reviewer saw.
    assert any(row["attempts"] >= 2 and row["status"] == "succeeded" for row in rows.values())
    assert "Retrying (attempt 2 of 3)" in watcher.labels
    assert watcher.reconnects >= 1  # the web process died under it
    log = "".join(site.lines)
    for victim in VICTIMS:
        assert f"{victim} exited unexpectedly (status -9): restart 1" in log
    assert "giving up" not in log
