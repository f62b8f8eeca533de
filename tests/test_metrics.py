"""/metrics: who may read it, and the series in Prometheus' own text format, on real Redis.

The series live in Redis shared with other test runs, so each test compares a value before
and after what it does, never an absolute count.
"""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from analysis import metrics
from analysis.models import Analysis, WorkerHeartbeat
from gemma_web.celery import app as celery_app

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-for-tests-0123456789"


def scrape(client, **headers) -> dict[str, dict]:
    """Each family by name: its type and {(sample name, labels): value}."""
    reply = client.get(reverse("metrics"), **headers)
    assert reply.status_code == 200, reply.status_code
    assert reply["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(reply.content.decode())
    return {
        f.name: {
            "type": f.type,
            "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples},
        }
        for f in families
    }


def value(families, family: str, sample: str, **labels) -> float:
    key = (sample, tuple(sorted((k, str(v)) for k, v in labels.items())))
    return families[family]["samples"].get(key, 0.0)


def beat(name: str, **fields) -> WorkerHeartbeat:
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        name=name, host="h", pid=1, queues="inference", started_at=now, beat_at=now, **fields
    )


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", password="x", is_staff=True)


@pytest.fixture
def read(client, staff):
    client.force_login(staff)
    return lambda: scrape(client)


def test_outsiders_get_404_as_everywhere_else(client, people, settings):
    settings.METRICS_TOKEN = TOKEN
    url = reverse("metrics")
    assert client.get(url).status_code == 404  # anonymous: no redirect to sign in either
    for user in (people.alice, people.mallory):  # a case owner is not staff
        client.force_login(user)
        assert client.get(url).status_code == 404
    client.logout()
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"):
        assert client.get(url, HTTP_AUTHORIZATION=header).status_code == 404, header
    assert client.post(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_a_scraper_reads_them_with_the_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    families = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert value(families, "gemma_metrics_store_up", "gemma_metrics_store_up") == 1


def test_no_token_configured_opens_nothing(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_staff_read_every_series_with_its_type(read):
    families = read()
    for series in metrics.ALL:
        assert series.name in families, series.name
        assert families[series.name]["type"] == series.kind, series.name


def test_counters_move(read):
    before = read()
    metrics.count_question("succeeded")
    metrics.count_question("retried")
    metrics.count_prefix_lookup("disk")
    metrics.count_upload_bytes(1500)
    metrics.record_purge("media", 3)
    after = read()
    for family, sample, labels, moved in [
        ("gemma_questions", "gemma_questions_total", {"outcome": "succeeded"}, 1),
        ("gemma_questions", "gemma_questions_total", {"outcome": "retried"}, 1),
        ("gemma_questions", "gemma_questions_total", {"outcome": "failed"}, 0),
        ("gemma_prefix_cache_lookups", "gemma_prefix_cache_lookups_total", {"result": "disk"}, 1),
        ("gemma_upload_bytes", "gemma_upload_bytes_total", {"protocol": "tus"}, 1500),
        ("gemma_purged", "gemma_purged_total", {"kind": "media"}, 3),
    ]:
        delta = value(after, family, sample, **labels) - value(before, family, sample, **labels)
        assert delta == moved, (sample, labels)


def test_a_histogram_counts_each_observation_in_its_bucket_and_every_one_above(read):
    before = read()
    for seconds in (0.3, 2.0, 5000.0):  # 5000 s is past the last bound: only +Inf has it
        metrics.observe_queue_wait("media", seconds)
    after = read()

    def moved(sample: str, **labels) -> float:
        name = "gemma_queue_wait_seconds"
        return value(after, name, sample, queue="media", **labels) - value(
            before, name, sample, queue="media", **labels
        )

    assert moved("gemma_queue_wait_seconds_bucket", le="0.1") == 0
    assert moved("gemma_queue_wait_seconds_bucket", le="0.5") == 1
    assert moved("gemma_queue_wait_seconds_bucket", le="2.5") == 2
    assert moved("gemma_queue_wait_seconds_bucket", le="1800.0") == 2
    assert moved("gemma_queue_wait_seconds_bucket", le="+Inf") == 3
    assert moved("gemma_queue_wait_seconds_count") == 3
    assert moved("gemma_queue_wait_seconds_sum") == pytest.approx(5002.3)


def test_an_answer_adds_its_tokens_decode_time_and_first_token_to_its_worker(read):
    worker = "inference@metrics-test"
    beat(worker)
    record = {"tokens": {"completion": 40}, "timings": {
        "generation_s": 0.5, "time_to_first_token_s": 0.2, "tokens_per_s": 80.0}}  # fmt: skip
    before = read()
    metrics.observe_answer(record, worker=worker)
    after = read()
    for family, sample, moved in [
        ("gemma_generated_tokens", "gemma_generated_tokens_total", 40),
        ("gemma_decode_seconds", "gemma_decode_seconds_total", 0.5),
        ("gemma_time_to_first_token_seconds", "gemma_time_to_first_token_seconds_count", 1),
    ]:
        delta = value(after, family, sample, worker=worker) - value(
            before, family, sample, worker=worker
        )
        assert delta == pytest.approx(moved), sample


def test_batch_occupancy_shows_for_live_workers_only(read):
    beat("inference@alive")
    beat("inference@gone", stopped_at=timezone.now())
    metrics.set_batch_occupancy(3, slots=4, worker="inference@alive")
    metrics.set_batch_occupancy(2, slots=4, worker="inference@gone")
    families = read()
    occupancy = families["gemma_batch_occupancy"]["samples"]
    assert occupancy[("gemma_batch_occupancy", (("worker", "inference@alive"),))] == 3
    assert ("gemma_batch_occupancy", (("worker", "inference@gone"),)) not in occupancy
    assert value(families, "gemma_batch_slots", "gemma_batch_slots", worker="inference@alive") == 4
    up = families["gemma_worker_up"]["samples"]
    assert up[("gemma_worker_up", (("queues", "inference"), ("worker", "inference@gone")))] == 0
    assert up[("gemma_worker_up", (("queues", "inference"), ("worker", "inference@alive")))] == 1


def test_queue_depth_counts_the_messages_waiting_in_the_broker(read):
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("media")
    before = value(read(), "gemma_queue_depth", "gemma_queue_depth", queue="media")
    try:
        for _ in range(2):  # no worker consumes the queue in this test
            celery_app.send_task("analysis.tasks.process_media", args=["nothing"], queue="media")
        after = value(read(), "gemma_queue_depth", "gemma_queue_depth", queue="media")
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("media")
    assert after - before == 2


def test_questions_queued_and_running_come_from_the_database(read, people):
    Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    families = read()
    assert value(families, "gemma_questions_in_state", "gemma_questions_in_state",
                 status="queued") == 1  # fmt: skip
    assert value(families, "gemma_questions_in_state", "gemma_questions_in_state",
                 status="running") == 0  # fmt: skip


def test_unknown_label_values_are_refused():
    with pytest.raises(ValueError, match="not one of"):
        metrics.count_question("vanished")
    with pytest.raises(ValueError, match="not one of"):
        metrics.count_prefix_lookup("maybe")


def test_a_write_with_redis_away_is_dropped_without_an_error(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="analysis.metrics"):
        metrics.count_question("failed")
        metrics.count_question("failed")  # skipped: the writer waits before it tries again
    warnings = [r for r in caplog.records if "cannot reach Redis" in r.getMessage()]
    assert len(warnings) == 1


def test_a_scrape_with_redis_away_still_answers(read, settings):
    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    families = read()
    assert value(families, "gemma_metrics_store_up", "gemma_metrics_store_up") == 0
    assert "gemma_questions" not in families  # unknown, not a reset to zero
    assert "gemma_questions_in_state" in families
