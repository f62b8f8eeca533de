"""tus PATCHes through the real ASGI application: the fast path (gemma_web/upload_patch.py).

Django's test client never reaches it, so these drive `gemma_web.asgi.application` with ASGI
messages, cookies and headers as a browser sends them. The fast path's work runs in worker
threads with their own database connections: the tests use committed transactions.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
from django.utils.crypto import get_random_string

from analysis.media import storage
from analysis.models import MediaAsset, MediaUpload
from gemma_web.asgi import application
from gemma_web.upload_patch import middleware
from tests import media_samples as samples
from tests.media_api import create, files_on_disk, sha256

pytestmark = pytest.mark.django_db(transaction=True)


class Browser:
    """A signed-in user's cookies (session + CSRF), sending tus PATCHes as ASGI messages."""

    def __init__(self, client=None, user=None) -> None:
        self.csrf = get_random_string(32)
        self.cookies = {"csrftoken": self.csrf}
        if user is not None:
            client.force_login(user)
            self.cookies["sessionid"] = client.cookies["sessionid"].value

    def patch(self, url, data, offset, *, pieces=1, length=None, method="PATCH", **extra):
        """`length`: the Content-Length announced (the body's own by default; False: none)."""
        host = extra.pop("host", "testserver")
        headers = {
            "host": host, "content-type": "application/offset+octet-stream",
            "tus-resumable": "1.0.0", "upload-offset": str(offset),
            "cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "x-csrftoken": self.csrf, **extra,
        }  # fmt: skip
        if length is not False:
            headers["content-length"] = str(len(data) if length is None else length)
        step = max(1, -(-len(data) // pieces))
        bodies = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        return asyncio.run(call(url, headers, bodies, method))


async def call(path: str, headers: dict, bodies: list[bytes], method: str = "PATCH"):
    messages = [
        {"type": "http.request", "body": b, "more_body": i < len(bodies) - 1}
        for i, b in enumerate(bodies)
    ]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # connected until the reply: Django listens meanwhile

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
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
    return urlsplit(create(client, people.case, len(data), name)["Location"]).path


def test_patches_stream_to_disk_and_a_cut_one_resumes(client, people, bob, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("the PATCH went through Django's view, not the fast path")

    monkeypatch.setattr("analysis.media.uploads.receive", not_here)
    data = samples.wav(seconds=0.3)
    total = len(data)
    url = new_upload(client, people, data)
    first = bob.patch(url, data[:1024], 0, pieces=3)
    assert (first.status_code, first.headers["upload-offset"]) == (204, "1024")
    # The connection drops half-way through the next chunk: nothing of it counts.
    cut = bob.patch(url, data[1024:1500], 1024, length=1024)
    assert (cut.status_code, cut.headers["upload-offset"]) == (400, "1024")
    assert "send it again" in cut.json()["error"]
    assert storage.partial_path(cut.json()["upload"]).stat().st_size == 1024
    for offset in range(1024, total, 1024):
        reply = bob.patch(url, data[offset : offset + 1024], offset, pieces=2)
        assert reply.status_code == 204, reply.content
    assert reply.headers["upload-offset"] == str(total)
    body = client.get(url).json()
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
    assert bob.patch(url, data[:1024], 0).headers["upload-offset"] == "1024"
    again = bob.patch(url, data[:1024], 0)
    assert (again.status_code, again.headers["upload-offset"]) == (204, "1024")
    assert storage.partial_path(MediaUpload.objects.get().id).stat().st_size == 1024


def test_a_chunk_out_of_order_is_a_conflict(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    reply = bob.patch(url, data[2048:3072], 2048)
    assert reply.status_code == 409
    assert (reply.json()["offset"], reply.headers["upload-offset"]) == (0, "0")


def test_a_body_longer_than_its_content_length_is_refused(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    reply = bob.patch(url, data[:1000], 0, pieces=4, length=100)
    assert (reply.status_code, reply.headers["upload-offset"]) == (400, "0")
    assert "longer than its Content-Length" in reply.json()["error"]
    assert storage.partial_path(reply.json()["upload"]).stat().st_size == 0


def test_a_body_over_the_chunk_limit_is_refused_while_it_streams(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    # Declared too long: refused before a byte is read, nothing on disk.
    assert bob.patch(url, data[:2048], 0).status_code == 413
    assert files_on_disk() == []
    # Not declared (chunked), and longer than the limit: cut off mid-stream, nothing kept.
    reply = bob.patch(url, data[:2048], 0, pieces=4, length=False)
    assert reply.status_code == 413
    assert client.get(url).json()["offset"] == 0
    assert all(storage.root().joinpath(f).stat().st_size == 0 for f in files_on_disk())
    assert not MediaAsset.objects.exists()


def test_a_put_with_a_content_range_is_no_way_in(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    old_door = {"method": "PUT", "content-range": f"bytes 0-1023/{len(data)}"}
    assert bob.patch(url, data[:1024], 0, **old_door).status_code == 405
    assert client.get(url).json()["offset"] == 0
    assert files_on_disk() == []


def test_no_session_is_sent_to_sign_in(client, people, small_chunks):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    reply = Browser().patch(url, data[:1024], 0)
    assert reply.status_code == 302
    assert reply.headers["location"].startswith("/login/?next=")


@pytest.mark.parametrize(("who", "status"), [("mallory", 404), ("carol", 403), ("alice", 404)])
def test_only_the_uploader_may_send_chunks(client, people, small_chunks, who, status):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    other = Browser(client, getattr(people, who))
    assert other.patch(url, data[:1024], 0).status_code == status
    assert storage.files_under_root() == []


def test_a_bad_csrf_token_is_refused(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    assert bob.patch(url, data[:1024], 0, **{"x-csrftoken": "x" * 32}).status_code == 403
    bob.csrf = ""
    assert bob.patch(url, data[:1024], 0).status_code == 403
    assert storage.files_under_root() == []


def test_an_unknown_host_is_refused(client, people, bob):
    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    assert bob.patch(url, data[:1024], 0, host="evil.example").status_code == 400


def test_every_middleware_was_decided_on():
    assert middleware()  # raises on a middleware the fast path has not been told about


def test_a_session_still_owing_its_second_factor_sends_no_bytes(client, people, small_chunks):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    data = samples.wav(seconds=0.2)
    url = new_upload(client, people, data)
    TOTPDevice.objects.create(user=people.bob, name="phone", confirmed=True)
    half = Browser(Client(), people.bob)  # signed in with a password, no code given yet
    reply = half.patch(url, data[:1024], 0)
    assert reply.status_code == 302 and "/account/two-factor/verify/" in reply.headers["location"]
    assert storage.files_under_root() == []
