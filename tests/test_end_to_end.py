"""The whole path on real parts: view → Redis broker → Celery worker → llama.cpp on the tiny
Gemma 4 → Redis channel layer → WebSocket, and the saved answer equals what streamed."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from analysis.models import Analysis
from gemma_web.asgi import application
from gemma_web.celery import app as celery_app

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inference_worker(settings, fresh_engine):
    """A real Celery worker, consuming the inference queue from the real broker, in a thread."""
    settings.STREAM_FLUSH_INTERVAL = 0.002  # the tiny model is fast: keep several batches
    settings.GEMMA_MAX_TOKENS = 64
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("inference")  # leftovers from other runs
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        queues=["inference"],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker


def socket_for(client: Client, case_id) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(
        application,
        f"/ws/cases/{case_id}/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")],
    )


async def collect_until_finished(socket: WebsocketCommunicator) -> tuple[list[dict], dict]:
    tokens: list[dict] = []
    while True:
        message = await socket.receive_json_from(timeout=60)
        if message["type"] == "tokens":
            tokens.append(message)
        elif message["status"] in ("succeeded", "failed", "cancelled"):
            return tokens, message


async def test_streamed_tokens_equal_the_saved_answer(people, inference_worker):
    client = Client()
    await sync_to_async(client.force_login)(people.bob)
    watcher = Client()  # a second browser on the same case sees the same stream
    await sync_to_async(watcher.force_login)(people.carol)
    sockets = [socket_for(client, people.case.id), socket_for(watcher, people.case.id)]
    for socket in sockets:
        connected, _ = await socket.connect()
        assert connected

    url = reverse("analysis-ask", args=[people.case.id])
    response = await sync_to_async(client.post)(url, {"question": "Describe the scene."})
    assert response.status_code == 302

    results = [await collect_until_finished(socket) for socket in sockets]
    analysis = await Analysis.objects.aget()
    assert analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    for tokens, final in results:
        assert final["status"] == "succeeded"
        assert "".join(t["text"] for t in tokens) == analysis.answer
        assert [t["seq"] for t in tokens] == list(range(1, len(tokens) + 1))
        assert len(tokens) > 1, "the answer must arrive in several messages"
    assert analysis.answer.strip()
    assert analysis.completion_tokens > 1 and analysis.prompt_tokens > 10
    for socket in sockets:
        await socket.disconnect()
