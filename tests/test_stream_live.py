"""Live answers on real parts (Redis broker and channel layer, a Celery worker running
llama.cpp on the tiny Gemma 4): many viewers, and a cancel that stops a running answer."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from django.test import Client
from django.urls import reverse

from analysis import streaming
from analysis.models import Analysis
from gemma_web.celery import app as celery_app
from tests.base import case_socket
from tests.test_end_to_end import collect_until_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PACE = 0.01  # seconds a token: a model slow enough to stop halfway


@pytest.fixture
def worker(settings, fresh_engine):
    settings.STREAM_FLUSH_INTERVAL = 0.02
    settings.GEMMA_MAX_TOKENS = 200
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("inference")
    with start_worker(
        celery_app, pool="solo", concurrency=1, queues=["inference"],
        perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30,
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def paced(monkeypatch):
    """The worker runs in this process: each token takes PACE, as on a slower model."""
    push = streaming.TokenStream.push

    def slow_push(self, token: str) -> None:
        time.sleep(PACE)
        push(self, token)

    monkeypatch.setattr(streaming.TokenStream, "push", slow_push)


async def ask(user, case_id, question: str) -> None:
    client = Client()
    await sync_to_async(client.force_login)(user)
    url = reverse("analysis-ask", args=[case_id])
    response = await sync_to_async(client.post)(url, {"question": question})
    assert response.status_code == 302


async def test_twenty_viewers_all_end_with_the_saved_answer(people, worker, settings):
    settings.GEMMA_MAX_TOKENS = 64
    viewers = [people.alice, people.bob, people.carol] * 7
    sockets = [await case_socket(user, people.case.id) for user in viewers[:20]]
    for socket in sockets:
        assert (await socket.connect())[0]
    await ask(people.bob, people.case.id, "Describe the scene.")
    results = await asyncio.gather(*(collect_until_finished(s) for s in sockets))
    analysis = await Analysis.objects.aget()
    assert analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    for tokens, final in results:
        assert final["status"] == "succeeded"
        by_seq = {t["seq"]: t["text"] for t in tokens}
        assert sorted(by_seq) == list(range(1, len(by_seq) + 1))  # no gap, no duplicate
        assert "".join(by_seq[s] for s in sorted(by_seq)) == analysis.answer
    for socket in sockets:
        await socket.disconnect()


async def test_cancelling_a_running_answer_stops_it_within_a_second(people, worker, paced):
    socket = await case_socket(people.bob, people.case.id)
    assert (await socket.connect())[0]
    await ask(people.bob, people.case.id, "Describe the scene at length.")
    while (message := await socket.receive_json_from(timeout=60))["type"] != "tokens":
        pass  # queued, running: wait for the first tokens
    analysis = await Analysis.objects.aget()
    client = Client()
    await sync_to_async(client.force_login)(people.bob)
    cancel = reverse("analysis-cancel", args=[people.case.id, analysis.id])
    assert (await sync_to_async(client.post)(cancel)).status_code == 302
    streamed_at_cancel = message["tokens"]
    tokens, final = await collect_until_finished(socket)
    await analysis.arefresh_from_db()
    assert final["status"] == analysis.status == Analysis.Status.CANCELLED
    after = analysis.record["tokens"]["completion"] - streamed_at_cancel
    # At PACE a token, what the model generated after the click is under a second of work
    # (the watch looks every 0.2 s), far from the 200 tokens an uncancelled answer runs.
    assert after * PACE < 1.0, after
    assert analysis.record["tokens"]["completion"] < 200
    # The partial answer is kept, and it is what the viewers saw.
    assert analysis.answer == message["text"] + "".join(t["text"] for t in tokens)
    assert analysis.answer == "".join(
        [c async for c in analysis.chunks.order_by("seq").values_list("text", flat=True)]
    )
    await socket.disconnect()
