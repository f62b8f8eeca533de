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


@pytest.mark.parametrize("slots", [1, 2], ids=["one-at-a-time", "batched"])
def test_every_process_adds_to_the_same_series(tmp_path, slots):
    env = {"METRICS_TOKEN": TOKEN, "GEMMA_MAX_TOKENS": "40", "INFERENCE_SLOTS": str(slots)}
    with running_site(tmp_path, env) as site:
        case = site.create_case()
        asked = [site.ask(case, f"How many frames, {i}?") for i in range(slots)]
        assert wait(lambda: all(site.rows()[a]["status"] in FINISHED for a in asked), 120)
        rows = site._query("SELECT status, worker, completion_tokens FROM analysis_analysis")
        assert [row["status"] for row in rows] == ["succeeded"] * slots
        (worker,) = {row["worker"] for row in rows}  # the inference worker's inference@<host>

        def swept() -> bool:  # beat sends the sweep to the default queue every second
            return scrape(site).get(("gemma_queue_wait_seconds_count", (("queue", "default"),)))

        assert wait(swept, 30)
        samples = scrape(site)
    by_worker = (("worker", worker),)
    # Counted in the inference worker, at the row's change of state and after each answer.
    assert samples[("gemma_questions_total", (("outcome", "succeeded"),))] == slots
    tokens = samples[("gemma_generated_tokens_total", by_worker)]
    assert tokens == sum(row["completion_tokens"] for row in rows) > 0
    assert samples[("gemma_time_to_first_token_seconds_count", by_worker)] == slots
    # Waits measured by the inference worker and by a prefork child of the other worker.
    assert samples[("gemma_queue_wait_seconds_count", (("queue", "inference"),))] == slots
    assert samples[("gemma_queue_wait_seconds_count", (("queue", "default"),))] >= 1
    # Read by the web process when scraped: heartbeats and the broker.
    assert samples[("gemma_worker_up", (("queues", "inference"), ("worker", worker)))] == 1
    assert samples[("gemma_queue_depth", (("queue", "inference"),))] == 0
    assert samples[("gemma_metrics_store_up", ())] == 1
    if slots > 1:  # the batching engine says what its batch holds
        assert samples[("gemma_batch_slots", by_worker)] == slots
        assert samples[("gemma_batch_occupancy", by_worker)] == 0  # all answered
