"""The ASGI guard refuses a body over its limit while it streams, before Django spools it."""

from __future__ import annotations

import uuid

import pytest

from gemma_web.body_limit import BodyLimit

UPLOAD_PATH = f"/cases/{uuid.uuid4()}/uploads/{uuid.uuid4()}/"


class App:
    """Reads the whole body like Django's ASGI handler, then answers 200."""

    def __init__(self) -> None:
        self.read = 0
        self.aborted = False

    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.aborted = True
                return
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(path: str, pieces: list[bytes], method: str = "PATCH", length: int | None = None):
    app, sent = App(), []
    headers = [(b"content-length", str(length).encode())] if length is not None else []
    queue = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    pulled = []

    async def receive():
        message = queue.pop(0)
        pulled.append(message)
        return message

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await BodyLimit(app)(scope, receive, send)
    return app, sent[0]["status"], len(pulled)


@pytest.fixture
def limits(settings):
    settings.MEDIA_CHUNK_BYTES = 1000
    settings.REQUEST_MAX_BODY_BYTES = 100


async def test_a_chunk_within_the_limit_passes(limits):
    app, status, _ = await call(UPLOAD_PATH, [b"x" * 600, b"x" * 400])
    assert (status, app.read) == (200, 1000)


async def test_a_declared_length_over_the_limit_is_refused_unread(limits):
    app, status, pulled = await call(UPLOAD_PATH, [b"x" * 2000], length=2000)
    assert (status, pulled, app.read) == (413, 0, 0)


async def test_a_body_that_grows_past_the_limit_is_cut_off_while_streaming(limits):
    pieces = [b"x" * 600] * 10  # no Content-Length: chunked transfer encoding
    app, status, pulled = await call(UPLOAD_PATH, pieces)
    assert status == 413
    assert app.aborted and app.read == 600
    assert pulled == 2  # stopped at the first piece past the limit, not at the end


async def test_other_requests_have_their_own_smaller_limit(limits):
    _, status, _ = await call("/cases/new/", [b"x" * 101], method="POST")
    assert status == 413
    _, status, _ = await call("/cases/new/", [b"x" * 100], method="POST")
    assert status == 200


async def test_only_a_patch_may_carry_a_chunk_to_an_upload(limits):
    # Uploads take their bytes by tus PATCH alone: a PUT there is any other request.
    _, status, _ = await call(UPLOAD_PATH, [b"x" * 101], method="PUT")
    assert status == 413
