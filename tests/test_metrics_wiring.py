"""The series move where the work happens: a real answer on the tiny model in a real Celery
worker, real uploads through the views, the real prefix cache, a reviewer's cancel and the
sweep's requeue. Values are compared before and after (the Redis is shared)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from analysis import recovery
from analysis.inference.cache import Entry, PrefixCache
from analysis.models import Analysis
from tests.media_api import create, patch
from tests.test_end_to_end import collect_until_finished, inference_worker, socket_for
from tests.test_metrics import scrape, value

pytestmark = pytest.mark.django_db
__all__ = ["inference_worker"]  # the real worker fixture, used below


@pytest.fixture
def staff_client(django_user_model):
    staff = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    return client


def moved(before, after, family: str, sample: str, **labels) -> float:
    return value(after, family, sample, **labels) - value(before, family, sample, **labels)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_real_answer_moves_its_workers_series(people, inference_worker):
    staff = await sync_to_async(_staff_client)()
    before = await sync_to_async(scrape)(staff)
    client = Client()
    await sync_to_async(client.force_login)(people.bob)
    watching = socket_for(client, people.case.id)
    assert (await watching.connect())[0]
    url = reverse("analysis-ask", args=[people.case.id])
    assert (await sync_to_async(client.post)(url, {"question": "Count."})).status_code == 302
    _, final = await collect_until_finished(watching)
    await watching.disconnect()
    analysis = await Analysis.objects.aget()
    assert final["status"] == analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    after = await sync_to_async(scrape)(staff)

    # The node name the worker claimed the row with; this in-thread test worker never beats,
    # so it has none and its series are labelled with the host name.
    worker = analysis.worker or socket.gethostname()
    assert analysis.completion_tokens > 0
    questions = ("gemma_questions", "gemma_questions_total")
    assert moved(before, after, *questions, outcome="succeeded") == 1
    tokens = ("gemma_generated_tokens", "gemma_generated_tokens_total")
    assert moved(before, after, *tokens, worker=worker) == analysis.completion_tokens
    assert moved(before, after, "gemma_decode_seconds", "gemma_decode_seconds_total",
                 worker=worker) > 0  # fmt: skip
    first = ("gemma_time_to_first_token_seconds", "gemma_time_to_first_token_seconds_count")
    assert moved(before, after, *first, worker=worker) == 1
    wait = ("gemma_queue_wait_seconds", "gemma_queue_wait_seconds_count")
    assert moved(before, after, *wait, queue="inference") == 1


def _staff_client() -> Client:
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("sam", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    return client


def test_a_reviewers_cancel_and_the_sweeps_requeue_are_outcomes(
    people, staff_client, django_capture_on_commit_callbacks
):
    before = scrape(staff_client)
    queued = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    bob = Client()
    bob.force_login(people.bob)
    running = Analysis.objects.create(case=people.case, created_by=people.bob, question="R?")
    with django_capture_on_commit_callbacks(execute=True) as counted:  # counted once committed
        bob.post(reverse("analysis-cancel", args=[people.case.id, queued.id]))
        assert running.start("inference@gone", 4242)
        assert recovery.requeue(running, reason=recovery.WORKER_SILENT, spent=True)
    assert counted
    after = scrape(staff_client)
    questions = ("gemma_questions", "gemma_questions_total")
    assert moved(before, after, *questions, outcome="cancelled") == 1
    assert moved(before, after, *questions, outcome="retried") == 1
    assert moved(before, after, *questions, outcome="succeeded") == 0


def test_upload_bytes_count_confirmed_chunks_only(people, staff_client, settings):
    settings.MEDIA_CHUNK_BYTES = 4096
    bob = Client()
    bob.force_login(people.bob)
    before = scrape(staff_client)
    url = create(bob, people.case, 3 * 4096)["Location"]
    for offset in (0, 4096):
        assert patch(bob, url, b"\0" * 4096, offset).status_code == 204
    assert patch(bob, url, b"\0" * 4096, 0).status_code == 204  # sent again: nothing new
    assert patch(bob, url, b"\1" * 1000, 9000).status_code == 409  # past the offset: nothing
    after = scrape(staff_client)
    uploads = ("gemma_upload_bytes", "gemma_upload_bytes_total")
    assert moved(before, after, *uploads, protocol="tus") == 2 * 4096


def test_prefix_cache_lookups_count_hits_by_tier_and_misses(tmp_path, staff_client):
    cache = PrefixCache(tmp_path / "cache", ram_bytes=1 << 20, disk_bytes=1 << 20)
    entry = Entry(state=b"kv" * 100, input_ids=np.arange(8, dtype=np.intc), media=["ab" * 32])
    before = scrape(staff_client)
    assert cache.get("k") is None  # miss
    cache.put("k", entry)
    cache.flush()
    assert cache.get("k") is not None  # in RAM
    elsewhere = PrefixCache(tmp_path / "cache", ram_bytes=1 << 20, disk_bytes=1 << 20)
    assert elsewhere.get("k") is not None  # another process: from disk
    after = scrape(staff_client)
    lookups = ("gemma_prefix_cache_lookups", "gemma_prefix_cache_lookups_total")
    assert [moved(before, after, *lookups, result=r) for r in ("miss", "ram", "disk")] == [1, 1, 1]
