"""Chunk PUTs through the real ASGI application: the fast path (gemma_web/chunk_put.py).

Django's test client never reaches it, so these drive `gemma_web.asgi.application` with ASGI
messages, cookies and headers as a browser sends them. The fast path's work runs in worker
threads with their own database connections: the tests use committed transactions.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from django.utils.crypto import get_random_string

from analysis.media import storage
from analysis.models import MediaAsset
from gemma_web.asgi import application
from gemma_web.chunk_put import middleware
from tests import media_samples as samples
from tests.media_api import files_on_disk, sha256, start

pytestmark = pytest.mark.django_db(transaction=True)


class Browser:
    """A signed-in user's cookies (session + CSRF), sending PUTs as ASGI messages."""

    def __init__(self, client=None, user=None) -> None:
        self.csrf = get_random_string(32)
        self.cookies = {"csrftoken": self.csrf}
        if user is not None:
            client.force_login(user)
            self.cookies["sessionid"] = client.cookies["sessionid"].value

    def put(self, url, data, first, total, *, pieces=1, length=True, host="testserver", **extra):
        headers = {
            "host": host, "content-type": "application/octet-stream",
            "content-range": f"bytes {first}-{first + len(data) - 1}/{total}",
            "cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "x-csrftoken": self.csrf, **extra,
        }  # fmt: skip
        if length:
            headers["content-length"] = str(len(data))
        step = max(1, -(-len(data) // pieces))
        bodies = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        return asyncio.run(call(url, headers, bodies))


async def call(path: str, headers: dict, bodies: list[bytes]):
    messages = [
        {"type": "http.request", "body": b, "more_body": i < len(bodies) - 1}
        for i, b in enumerate(bodies)
    ]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(k.encode(), str(v).encode()) for k, v in headers.items()],
    }  # fmt: skip
    await application(scope, receive, send)
    return Reply(sent)


class Reply:
    def __init__(self, sent: list[dict]) -> None:
        self.status_code = sent[0]["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
        self.content = b"".join(m.get("body", b"") for m in sent[1:])

    def json(self) -> dict:
        return json.loads(self.content)


@pytest.fixture
def small_chunks(settings):
    settings.MEDIA_CHUNK_BYTES = 1024


@pytest.fixture
def bob(client, people, small_chunks):
    return Browser(client, people.bob)


def new_upload(client, people, data: bytes, name: str = "a.wav") -> str:
    client.force_login(people.bob)
    return start(client, people.case, name, len(data)).json()["url"]


def test_chunks_stream_to_disk_and_a_cut_chunk_resumes(client, people, bob, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("the chunk went through Django's view, not the fast path")

    monkeypatch.setattr("analysis.media.uploads.receive", not_here)
    data = samples.wav(seconds=0.3)
    total = len(data)
    url = new_upload(client, people, data)
    assert bob.put(url, data[:1024], 0, total, pieces=3).json()["offset"] == 1024
    # The connection drops half-way through the next chunk: nothing of it counts.
    cut_range = {"content-range": f"bytes 1024-2047/{total}"}
    cut = bob.put(url, data[1024:1500], 1024, total, **cut_range)
    assert (cut.status_code, cut.headers["upload-offset"]) == (400, "1024")
    assert "send it again" in cut.json()["error"]
    assert storage.partial_path(cut.json()["upload"]).stat().st_size == 1024
    for first in range(1024, total, 1024):
        reply = bob.put(url, data[first : first + 1024], first, total, pieces=2)
        assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["status"] == "complete" and body["duplicate"] is False
    asset = MediaAsset.objects.get(pk=body["asset"])
    assert (asset.sha256, asset.size, asset.kind) == (sha256(data), total, "audio")
    assert storage.original_path(asset.case_id, asset.id).read_bytes() == data
    assert files_on_disk() == [f"originals/{people.case.id}/{asset.id}"]
    # Django's middleware ran on the way out too (SecurityMiddleware, XFrameOptions).
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"


def test_a_chunk_sent_twice_is_accepted_once(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    assert bob.put(url, data[:1024], 0, len(data)).json()["offset"] == 1024
    again = bob.put(url, data[:1024], 0, len(data))
    assert (again.status_code, again.json()["offset"]) == (200, 1024)
    assert storage.partial_path(again.json()["upload"]).stat().st_size == 1024


def test_a_chunk_out_of_order_is_a_conflict(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    reply = bob.put(url, data[2048:3072], 2048, len(data))
    assert reply.status_code == 409
    assert (reply.json()["offset"], reply.headers["upload-offset"]) == (0, "0")


def test_a_body_over_the_chunk_limit_is_refused_while_it_streams(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    # Declared too long: refused before a byte is read, nothing on disk.
    assert bob.put(url, data[:2048], 0, len(data)).status_code == 413
    assert files_on_disk() == []
    # Not declared (chunked), and longer than the limit: cut off mid-stream, nothing kept.
    range_1k = {"content-range": f"bytes 0-1023/{len(data)}"}
    reply = bob.put(url, data[:2048], 0, len(data), pieces=4, length=False, **range_1k)
    assert reply.status_code == 413
    assert client.get(url).json()["offset"] == 0
    assert all(storage.root().joinpath(f).stat().st_size == 0 for f in files_on_disk())
    assert not MediaAsset.objects.exists()


def test_no_session_is_sent_to_sign_in(client, people, small_chunks):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    reply = Browser().put(url, data[:1024], 0, len(data))
    assert reply.status_code == 302
    assert reply.headers["location"].startswith("/login/?next=")


@pytest.mark.parametrize(("who", "status"), [("mallory", 404), ("carol", 403), ("alice", 404)])
def test_only_the_uploader_may_send_chunks(client, people, small_chunks, who, status):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    other = Browser(client, getattr(people, who))
    assert other.put(url, data[:1024], 0, len(data)).status_code == status
    assert storage.files_under_root() == []


def test_a_bad_csrf_token_is_refused(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    assert bob.put(url, data[:1024], 0, len(data), **{"x-csrftoken": "x" * 32}).status_code == 403
    bob.csrf = ""
    assert bob.put(url, data[:1024], 0, len(data)).status_code == 403
    assert storage.files_under_root() == []


def test_an_unknown_host_is_refused(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    assert bob.put(url, data[:1024], 0, len(data), host="evil.example").status_code == 400


def test_every_middleware_was_decided_on():
    assert middleware()  # raises on a middleware the fast path has not been told about


def test_a_session_still_owing_its_second_factor_sends_no_chunk(client, people, small_chunks):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    TOTPDevice.objects.create(user=people.bob, name="phone", confirmed=True)
    half = Browser(Client(), people.bob)  # signed in with a password, no code given yet
    reply = half.put(url, data[:1024], 0, len(data))
    assert reply.status_code == 302 and "/account/two-factor/verify/" in reply.headers["location"]
    assert storage.files_under_root() == []
