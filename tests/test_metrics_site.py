"""One set of series across the site's processes: the real `manage.py serve` (web, inference
worker, the other worker's prefork children, beat, its own Valkey) answers a question, and a
scraper with the token reads what each process added, in Prometheus' text format."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.site_driver import FINISHED, TINY_TEXT, running_site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
TOKEN = "site-scrape-token-0123456789abcdef"


def scrape(site) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(  # noqa: S310 - http on loopback
        site.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_process_adds_to_the_same_series(tmp_path):
    with running_site(tmp_path, {"METRICS_TOKEN": TOKEN, "GEMMA_MAX_TOKENS": "40"}) as site:
        case = site.create_case()
        asked = site.ask(case, "How many frames?")
        assert wait(lambda: site.rows()[asked]["status"] in FINISHED, 120)
        (row,) = site._query(
            "SELECT status, worker, completion_tokens FROM analysis_analysis"
        )  # fmt: skip
        assert row["status"] == "succeeded"
        worker = row["worker"]  # the inference worker's node name, inference@<host>

        def swept() -> bool:  # beat sends the sweep to the default queue every second
            return scrape(site).get(("gemma_queue_wait_seconds_count", (("queue", "default"),)))

        assert wait(swept, 30)
        samples = scrape(site)
    # Counted in the inference worker, at the row's change of state and after its answer.
    assert samples[("gemma_questions_total", (("outcome", "succeeded"),))] == 1
    tokens = samples[("gemma_generated_tokens_total", (("worker", worker),))]
    assert tokens == row["completion_tokens"] > 0
    assert samples[("gemma_time_to_first_token_seconds_count", (("worker", worker),))] == 1
    # Waits measured by the inference worker and by a prefork child of the other worker.
    assert samples[("gemma_queue_wait_seconds_count", (("queue", "inference"),))] == 1
    assert samples[("gemma_queue_wait_seconds_count", (("queue", "default"),))] >= 1
    # Read by the web process when scraped: heartbeats and the broker.
    assert samples[("gemma_worker_up", (("queues", "inference"), ("worker", worker)))] == 1
    assert samples[("gemma_queue_depth", (("queue", "inference"),))] == 0
    assert samples[("gemma_metrics_store_up", ())] == 1
